// How a guide's fenced code blocks are read, and the table of docs/guides.md made from the
// catalog (blocks.mjs): shared by scripts/check-structure.mjs, which holds both to the guides and
// the docs, and by whoever regenerates the catalog's hashes.

import { createHash } from 'node:crypto';

/**
 * The fenced blocks of a guide's text, in order: `{ number, section, language, firstLine, sha256 }`.
 * A block's text is its lines between the fences, joined by `\n`; its section is the text of the
 * last heading before it.
 */
export function fencedBlocks(text) {
  const blocks = [];
  let section = '';
  let open = null;
  for (const line of text.split(/\r?\n/)) {
    const fence = /^```(.*)$/.exec(line);
    if (open) {
      if (fence && fence[1].trim() === '') {
        const body = open.lines.join('\n');
        blocks.push({
          lines: open.lines,
          number: blocks.length + 1,
          section: open.section,
          language: open.language,
          firstLine: open.lines[0] ?? '',
          sha256: createHash('sha256').update(body).digest('hex'),
        });
        open = null;
      } else {
        open.lines.push(line);
      }
    } else if (fence) {
      open = { section, language: fence[1].trim(), lines: [] };
    } else if (/^#{1,6}\s/.test(line)) {
      section = line.replace(/^#+\s*/, '').trim();
    }
  }
  return blocks;
}

/** The Markdown table docs/guides.md holds: how many blocks run, then one row per block of the catalog. */
export function catalogTable(blocks) {
  const runs = blocks.filter((block) => block.test || block.native).length;
  const count = `${runs} of the ${blocks.length} blocks run verbatim; ${blocks.length - runs} cannot, each for the reason beside it.`;
  const cell = (text) => text.replaceAll('|', '\\|');
  const rows = blocks.map((block) => {
    const what = block.test ? `runs verbatim in \`${block.file}\`: ${cell(block.test)}`
      : block.native ? `runs verbatim natively in \`${block.native.file}\`: ${cell(block.native.test.replaceAll('_', ' '))}`
        : `not runnable: ${cell(block.notRunnable)}`;
    return `| ${block.guide} | ${block.number} | ${cell(block.section)} | ${block.language || 'text'} | ${what} |`;
  });
  return [count, '', '| guide | block | section | language | verbatim? |', '| --- | --- | --- | --- | --- |', ...rows].join('\n');
}

/**
 * A guide's line as the verbatim check compares it: without white space, quotes, commas,
 * semicolons, colons and backslashes, so that a JSON field the test writes as a JavaScript one, or
 * a command kept in a template string, still counts as the guide's.
 */
export const comparable = (text) => text.replace(/[\s'"`,;:\\]/g, '');

/**
 * The lines of a block (`lines`, the guide's) that its test's text (`source`) does not hold, with
 * the lines it declares edited (`edits`, each with why) left out; lines without a letter or digit
 * (a lone brace) are not compared.
 */
export function unrunLines(lines, source, edits = {}) {
  const flat = comparable(source);
  return lines
    .map((line) => line.trim())
    .filter((line) => /[A-Za-z0-9]/.test(line) && !flat.includes(comparable(line)) && !(line in edits));
}
