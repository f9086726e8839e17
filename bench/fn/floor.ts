/**
 * The floor the function is measured against: read the same ResourceList from stdin, parse it into a YAML
 * Document and print it back, with the same parse and print options the function uses, and nothing else.
 */
import { readFileSync } from 'node:fs';
import { parseYamlDocument, printYamlDocument } from '../../src/krm/yaml-io.js';

process.stdout.write(printYamlDocument(parseYamlDocument(readFileSync(0, 'utf8'))));
