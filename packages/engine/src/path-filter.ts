import type { PathFilter } from '@ferry/manifest';

/**
 * One glob as a regular expression over a whole `/`-separated path: `*` matches within a
 * folder name, `**` across folders (`**\/` also matches no folder at all), `?` one
 * character. A pattern without `/` names files by their base name, in any folder
 * (`*.safetensors`), as rclone's and `hf download`'s filters do.
 */
function globRegExp(glob: string): RegExp {
  const anywhere = !glob.includes('/');
  let source = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === '*' && glob[i + 1] === '*') {
      const slash = glob[i + 2] === '/';
      source += slash ? '(?:.*/)?' : '.*';
      i += slash ? 2 : 1;
    } else if (c === '*') source += '[^/]*';
    else if (c === '?') source += '[^/]';
    else source += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${anywhere ? '(?:.*/)?' : ''}${source.replace(/^\//, '')}$`);
}

/**
 * Whether a file of a version is selected: it is one of `only` or matches one of `include`
 * (or there is neither), and matches none of `exclude` — an exclude wins. `undefined`
 * selects everything.
 */
export function compileFilter(filter: PathFilter | undefined): (path: string) => boolean {
  const include = (filter?.include ?? []).map(globRegExp);
  const only = new Set(filter?.only);
  const exclude = (filter?.exclude ?? []).map(globRegExp);
  const selecting = include.length > 0 || only.size > 0;
  if (!selecting && exclude.length === 0) return () => true;
  return (path) =>
    (!selecting || only.has(path) || include.some((r) => r.test(path))) &&
    !exclude.some((r) => r.test(path));
}

/** The filter as stored with a tree, or `undefined` when it selects everything. */
export function normalizeFilter(
  filter: { [K in keyof PathFilter]?: PathFilter[K] | undefined } | undefined,
): PathFilter | undefined {
  const include = filter?.include?.filter((g) => g !== '') ?? [];
  const only = filter?.only?.filter((p) => p !== '') ?? [];
  const exclude = filter?.exclude?.filter((g) => g !== '') ?? [];
  if (include.length === 0 && only.length === 0 && exclude.length === 0) return undefined;
  return {
    ...(include.length > 0 ? { include } : {}),
    ...(only.length > 0 ? { only } : {}),
    ...(exclude.length > 0 ? { exclude } : {}),
  };
}

/** The entries of a version a tree holds: all of them, or those its filter selects. */
export function heldEntries<E extends { path: string }>(
  entries: readonly E[],
  filter: PathFilter | undefined,
): readonly E[] {
  if (filter === undefined) return entries;
  const selects = compileFilter(filter);
  return entries.filter((e) => selects(e.path));
}
