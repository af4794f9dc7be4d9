// The extension's grammar (syntaxes/gen.tmLanguage.json) loaded into VS Code's own TextMate engine
// (vscode-textmate with vscode-oniguruma), shared by scopes.js and preview.js.
//   const { loadGrammar, tokenize } = require("./textmate");
//   const grammar = await loadGrammar();
//   tokenize(grammar, text)  -> per line, [text, innermost scope] of each token; the tokens of a line
//                               cover it exactly, so joining them (and the lines with "\n") gives text back
const fs = require("fs");
const path = require("path");
const vsctm = require("vscode-textmate");
const oniguruma = require("vscode-oniguruma");

const GRAMMAR = path.join(__dirname, "..", "syntaxes", "gen.tmLanguage.json");

let registry;

function loadGrammar() {
  if (!registry) {
    const wasm = fs.readFileSync(path.join(require.resolve("vscode-oniguruma"), "..", "onig.wasm")).buffer;
    const onigLib = oniguruma.loadWASM(wasm).then(() => ({
      createOnigScanner: (sources) => new oniguruma.OnigScanner(sources),
      createOnigString: (s) => new oniguruma.OnigString(s),
    }));
    registry = new vsctm.Registry({
      onigLib,
      loadGrammar: async () => vsctm.parseRawGrammar(fs.readFileSync(GRAMMAR, "utf8"), GRAMMAR),
    });
  }
  return registry.loadGrammar("source.gen");
}

function tokenize(grammar, text) {
  let state = vsctm.INITIAL;
  return text.split("\n").map((line) => {
    const result = grammar.tokenizeLine(line, state);
    state = result.ruleStack;
    return result.tokens.map((t) => [line.slice(t.startIndex, t.endIndex), t.scopes[t.scopes.length - 1]]);
  });
}

module.exports = { loadGrammar, tokenize, GRAMMAR };
