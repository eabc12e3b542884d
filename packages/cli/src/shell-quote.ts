/** `path` as it can be pasted into a POSIX shell. */
export function shellQuote(text: string): string {
  if (/^[A-Za-z0-9_./:@=+,-]+$/.test(text)) return text;
  return `'${text.replaceAll("'", `'\\''`)}'`;
}
