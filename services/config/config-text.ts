/**
 * The configuration file's text → a value, with syntax errors that point at what to fix: the
 * file, line and column, and the lines around it with a caret under the bad column.
 *
 *   tidewire: tidewire.yaml:6:6: is not valid YAML: Sequence item without - indicator
 *        5 |       path: orders/{id}
 *        6 |      exclude: [a]
 *          |      ^
 *
 * The yaml library reports some errors at the start of the line (a misindented key) or where the
 * text ended (an unclosed quote); the caret goes to the character a reader must change instead.
 */
import YAML from 'yaml';
import { ConfigError } from '../../core/errors.ts';

/** Parses YAML, or JSON when the file name ends in .json. Throws ConfigError with a code frame. */
export function parseConfigText(file: string, text: string): unknown {
  const json = /\.json$/i.test(file);
  if (json) {
    try {
      return JSON.parse(text);
    } catch (err) {
      const message = (err as Error).message;
      // V8 names the offset in most of its messages ("... in JSON at position 42").
      const at = /at position (\d+)/.exec(message);
      const reason = message.replace(/ in JSON at position \d+.*$/s, '');
      throw syntaxError(file, 'JSON', reason, text, at ? Number(at[1]) : null, err);
    }
  }
  const doc = YAML.parseDocument(text, { prettyErrors: false });
  const first = doc.errors[0];
  if (first) throw syntaxError(file, 'YAML', first.message, text, badOffset(text, first), first);
  return doc.toJS();
}

/** Where the reader must look for a YAML error. */
function badOffset(text: string, err: YAML.YAMLError): number {
  let pos = Math.min(err.pos[0], text.length);
  if (err.code === 'MISSING_CHAR' && /closing "|closing '/.test(err.message)) {
    // An unclosed quote is reported where the text ended: point at the quote that opened it.
    const quote = err.message.includes('closing "') ? '"' : "'";
    for (let i = pos - 1; i >= 0; i--) {
      if (text[i] === quote && (quote === "'" || text[i - 1] !== '\\')) return i;
    }
    return pos;
  }
  // Reported at the start of a line (a misindented key): its first character is the bad one. A
  // tab is never skipped: as indentation it is itself the error.
  const lineStart = text.lastIndexOf('\n', pos - 1) + 1;
  if (/^ *$/.test(text.slice(lineStart, pos))) {
    while (text[pos] === ' ') pos++;
  }
  return pos;
}

function syntaxError(file: string, kind: 'YAML' | 'JSON', reason: string, text: string, offset: number | null, cause: unknown): ConfigError {
  const short = reason.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
  if (offset === null) return new ConfigError(file, `is not valid ${kind}: ${short}`, { cause });
  const { line, column, frame } = codeFrame(text, offset);
  return new ConfigError(`${file}:${line}:${column}`, `is not valid ${kind}: ${short}\n${frame}`, { cause });
}

/**
 * Line and column (1-based) of `offset`, and the line before it, its line and a caret line under
 * the column. Tabs stay tabs in the caret line, so the caret lines up in any terminal.
 */
export function codeFrame(text: string, offset: number): { line: number; column: number; frame: string } {
  const lines = text.split('\n');
  let line = 0;
  let start = 0;
  while (line < lines.length - 1 && start + lines[line].length < offset) {
    start += lines[line].length + 1;
    line++;
  }
  const column = Math.max(0, Math.min(offset - start, lines[line].length));
  const number = (n: number) => String(n).padStart(6);
  const shown: string[] = [];
  if (line > 0) shown.push(`${number(line)} | ${lines[line - 1]}`);
  shown.push(`${number(line + 1)} | ${lines[line]}`);
  const pad = lines[line].slice(0, column).replace(/[^\t]/g, ' ');
  shown.push(`${' '.repeat(6)} | ${pad}^`);
  return { line: line + 1, column: column + 1, frame: shown.join('\n') };
}
