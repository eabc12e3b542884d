import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

// `socket:[12345]` as /proc/<pid>/fd shows a socket.
const SOCKET_LINK = /^socket:\[(\d+)\]$/;

function socketInodes(pid: number): Set<string> {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const inode = SOCKET_LINK.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1];
      if (inode !== undefined) inodes.add(inode);
    } catch {
      // Closed between the listing and the read: nothing queued there any more.
    }
  }
  return inodes;
}

/** Bytes queued on the connections of a process, from /proc/net/tcp and tcp6. */
export interface SocketQueues {
  /** In the process's receive queues: arrived, not read yet. */
  unread: number;
  /**
   * In the send queues of the other ends of its connections, where they are on this host
   * (a loopback origin): written by the origin, not delivered yet.
   */
  unsent: number;
}

interface TcpRow {
  local: string;
  remote: string;
  txQueue: number;
  rxQueue: number;
  inode: string;
}

function tcpRows(table: string): TcpRow[] {
  const rows: TcpRow[] = [];
  let text: string;
  try {
    text = readFileSync(table, 'utf8');
  } catch {
    return rows;
  }
  // Columns: sl local rem st tx_queue:rx_queue tr:when retrnsmt uid timeout inode …
  for (const line of text.split('\n').slice(1)) {
    const [, local, remote, , queues, , , , , inode] = line.trim().split(/\s+/);
    if (local === undefined || remote === undefined || queues === undefined) continue;
    if (inode === undefined) continue;
    const [tx = '0', rx = '0'] = queues.split(':');
    rows.push({
      local,
      remote,
      txQueue: Number.parseInt(tx, 16),
      rxQueue: Number.parseInt(rx, 16),
      inode,
    });
  }
  return rows;
}

/**
 * What sits in the socket buffers of `pid`'s TCP connections: its receive queues, and the
 * send queues of their other ends on this host. Both count as sent for an origin that
 * meters what it writes, and a SIGKILL throws both away. On loopback the kernel grows a
 * receive buffer up to `net.ipv4.tcp_rmem`'s maximum (32 MiB here) and a send buffer up to
 * `tcp_wmem`'s (4 MiB), so a reader slower than its origin leaves megabytes per connection
 * there. Synchronous (5–30 ms here), read between the SIGSTOP and the SIGKILL of a kill;
 * undefined where /proc cannot tell (not Linux, or the process is gone).
 */
export function socketQueues(pid: number): SocketQueues | undefined {
  let inodes: Set<string>;
  try {
    inodes = socketInodes(pid);
  } catch {
    return undefined;
  }
  // Each table costs milliseconds to read (the kernel walks every socket, TIME_WAIT ones
  // too), and the process keeps running meanwhile: IPv6 only when IPv4 has none of its own.
  let rows = tcpRows('/proc/net/tcp');
  let own = rows.filter((r) => inodes.has(r.inode));
  if (own.length === 0) {
    rows = tcpRows('/proc/net/tcp6');
    own = rows.filter((r) => inodes.has(r.inode));
  }
  // The other end of a connection has local and remote addresses swapped.
  const peers = new Set(own.map((r) => `${r.remote} ${r.local}`));
  return {
    unread: own.reduce((sum, r) => sum + r.rxQueue, 0),
    unsent: rows
      .filter((r) => !inodes.has(r.inode) && peers.has(`${r.local} ${r.remote}`))
      .reduce((sum, r) => sum + r.txQueue, 0),
  };
}
