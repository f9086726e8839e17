/**
 * The floor the function is measured against: read the same ResourceList from stdin, parse it into a `yaml`
 * Document and print it back (kyaml layout, YAML 1.1-safe quoting, no folding), and nothing else. This is the
 * least any parse-and-print KRM function written with `yaml` does; the function itself parses but never
 * re-prints what it does not change.
 */
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';

const doc = parseDocument(readFileSync(0, 'utf8'), { uniqueKeys: false, strict: false, prettyErrors: false });
doc.setSchema('1.2', { compat: 'yaml-1.1' });
process.stdout.write(doc.toString({ indentSeq: false, lineWidth: 0, minContentWidth: 0, flowCollectionPadding: false }));
