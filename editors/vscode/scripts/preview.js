// A standalone HTML page of .gen files highlighted by the extension's grammar: each token coloured
// by its TextMate scope (VS Code's own engine, through textmate.js) with a small Dark+-like theme,
// line numbers, and a legend of the scopes used.
//   node scripts/preview.js FILE... [-o OUT.html]   (stdout without -o)
// scripts/screenshot.sh renders the page to PNG with headless Chromium.
const fs = require("fs");
const path = require("path");
const { loadGrammar, tokenize } = require("./textmate");

// Scope prefix -> style; the longest prefix that matches a token's innermost scope wins. Dark+'s
// colours, except that operators, layers (pipe stages) and declared networks get their own so that
// every kind of token reads apart.
const THEME = {
  comment: { color: "#6a9955", fontStyle: "italic" },
  string: { color: "#ce9178" },
  "constant.numeric": { color: "#b5cea8" },
  "storage.type": { color: "#569cd6" },                 // model, param, data, latent, loss, encoder, net ...
  keyword: { color: "#c586c0" },                        // train, from, minimize, over, with; batch, epochs ...
  "keyword.operator": { color: "#f29668" },             // |> ~ | -> = + - * /
  "keyword.operator.log": { color: "#c586c0" },         // the word `log`
  "support.type": { color: "#4ec9b0" },                 // real, bin, cat, int, float, logit
  "support.function": { color: "#4fc1ff" },             // layers and functions in a pipe: |> Linear(256)
  "entity.name.function": { color: "#dcdcaa", fontWeight: "bold" },  // declared networks: encoder q
  "entity.name.function.call": { color: "#dcdcaa" },    // calls: Normal(0, 1), binarized_mnist(), kl(...)
  "entity.name.variable": { color: "#9cdcfe" },         // declared names: latent z, loss elbo
};
const PLAIN = { color: "#d4d4d4" };
const BACKGROUND = "#1e1e1e";

function themeKey(scope) {
  return Object.keys(THEME).filter((k) => scope === k || scope.startsWith(k + "."))
    .sort((a, b) => b.length - a.length)[0];
}

function css(style) {
  return [`color:${style.color}`, style.fontStyle && `font-style:${style.fontStyle}`,
    style.fontWeight && `font-weight:${style.fontWeight}`].filter(Boolean).join(";");
}

const escape = (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
const shortScope = (scope) => scope.replace(/\.gen$/, "");

// About the size of the page in CSS pixels at 14px/20px monospace (a character is ~8.5px wide):
// the widest line of code next to the legend, the longer of the two columns high. screenshot.sh
// reads it from the page's <meta name="gendsl-preview-size"> to size Chromium's window.
function pageSize(files, used) {
  const CHAR = 8.5, LINE = 20, HEADING = 28;
  const length = (s) => [...s].length;
  const lines = Object.values(files).map((ls) => ls.length && ls[ls.length - 1].every(([t]) => !t) ? ls.slice(0, -1) : ls);
  const codeCols = 5 + Math.max(0, ...lines.flat().map((tokens) => length(tokens.map(([t]) => t).join(""))));
  const legendCols = Math.max(LEGEND_TITLE.length, ...[...used].map(([scope, ex]) => 3 + length(shortScope(scope) + ex.join(" "))));
  const codeHeight = lines.reduce((h, ls) => h + HEADING + ls.length * LINE + 16, 0);
  const legendHeight = HEADING + used.size * LINE;
  return [Math.ceil(40 + (codeCols + legendCols) * CHAR + 32 + 16), 32 + Math.max(codeHeight, legendHeight) + 8];
}
const LEGEND_TITLE = "scopes (source.gen: plain)";

// files: { name: per line, [text, scope] of each token } (tokenize's output) -> the HTML page.
function renderPage(files) {
  const used = new Map();  // scope -> a few (shortened) token texts, in order of first appearance
  const token = ([text, scope]) => {
    const key = themeKey(scope);
    if (!key) return escape(text);  // source.gen: unscoped text, plain
    const examples = used.get(scope) ?? [];
    const example = text.trim().length > 12 ? text.trim().slice(0, 11) + "…" : text.trim();
    const quoted = key === "comment" || key === "string";  // their legend needs no sample text
    if (example && !quoted && examples.length < 3 && !examples.includes(example)) examples.push(example);
    used.set(scope, examples);
    return `<span class="tok" style="${css(THEME[key])}" title="${escape(shortScope(scope))}">${escape(text)}</span>`;
  };
  // a numbered line each; the empty "line" after a final newline gets no number
  const line = (tokens, i, lines) => i === lines.length - 1 && tokens.every(([text]) => !text) ? ""
    : `<span class="line">${tokens.map(token).join("")}</span>`;
  const sections = Object.entries(files).map(([name, lines]) =>
    `<section><h1>${escape(name)}</h1><pre class="code">${lines.map(line).join("\n")}</pre></section>`).join("\n");
  const legend = [...used].map(([scope, examples]) => {
    const style = THEME[themeKey(scope)];
    return `<li class="legend-item"><span class="swatch" style="background:${style.color}"></span>` +
      `<span style="${css(style)}">${escape(shortScope(scope))}</span>` +
      `<span class="examples">${escape(examples.join(" "))}</span></li>`;
  }).join("\n");
  const [width, height] = pageSize(files, used);
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${escape(Object.keys(files).join(", "))}</title>
<meta name="gendsl-preview-size" content="${width},${height}">
<style>
  body { margin: 0; padding: 16px 20px; background: ${BACKGROUND}; color: ${PLAIN.color};
         font: 14px/20px "DejaVu Sans Mono", Menlo, Consolas, monospace; }
  main { display: flex; gap: 32px; align-items: flex-start; }
  h1, h2 { font-size: 14px; margin: 0 0 8px; color: #858585; font-weight: normal; }
  pre { margin: 0 0 16px; font: inherit; counter-reset: line; }
  .line { counter-increment: line; }
  .line::before { content: counter(line); display: inline-block; width: 3ch; margin-right: 2ch;
                  text-align: right; color: #6e7681; }
  .legend { flex: none; }
  .legend ul { list-style: none; margin: 0; padding: 0; }
  .legend-item { white-space: nowrap; }
  .swatch { display: inline-block; width: 10px; height: 10px; margin-right: 8px; }
  .examples { color: #858585; margin-left: 1ch; }
</style></head>
<body><main><div class="files">
${sections}
</div>
<aside class="legend"><h2>${LEGEND_TITLE}</h2><ul>
${legend}
</ul></aside></main></body></html>
`;
}

module.exports = { THEME, themeKey, renderPage };

if (require.main === module) {
  const args = process.argv.slice(2);
  const o = args.indexOf("-o");
  const out = o >= 0 ? args.splice(o, 2)[1] : null;
  if (!args.length || (o >= 0 && !out) || args.some((a) => a.startsWith("-"))) {
    console.error("usage: node preview.js FILE.gen... [-o OUT.html]");
    process.exit(2);
  }
  loadGrammar().then((grammar) => {
    const page = renderPage(Object.fromEntries(args.map((f) => [path.basename(f), tokenize(grammar, fs.readFileSync(f, "utf8"))])));
    if (out) fs.writeFileSync(out, page); else process.stdout.write(page);
  });
}
