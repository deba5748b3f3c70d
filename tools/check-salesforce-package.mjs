#!/usr/bin/env node
// Converts the Salesforce package in salesforce/ from source format to Metadata API format with
// Salesforce's own library, @salesforce/source-deploy-retrieve, the step `sf project deploy start` runs
// before it sends anything to an org. String replacements from sfdx-project.json are applied as in a
// deploy, so every SFINTACCT_* variable they name must be set.
//
// It fails (exit 1) when a file is not part of a metadata component the library knows, when a
// component cannot be converted, when a replacement variable is missing, or when a %%SFINTACCT_...%%
// placeholder is left in the converted package. It needs no org and no network.
//
//   node tools/check-salesforce-package.mjs [--project salesforce] [--output DIR]
//
// Without --output the converted package goes to a temporary directory that is removed at the end.

import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// The library logs to a file in the home directory unless told not to; nothing here needs that log.
process.env.SF_DISABLE_LOG_FILE ??= 'true';
const { ComponentSet, MetadataConverter } = await import('@salesforce/source-deploy-retrieve');

const PLACEHOLDER = /%%SFINTACCT_[A-Z_]+%%/;

function parseArguments(argv) {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const options = { project: path.resolve(here, '..', 'salesforce'), output: undefined };
  for (let index = 0; index < argv.length; index += 1) {
    const name = argv[index];
    const value = argv[index + 1];
    if ((name === '--project' || name === '--output') && value) {
      options[name.slice(2)] = path.resolve(value);
      index += 1;
    } else {
      throw new Error(`unknown argument ${name}; usage: [--project DIR] [--output DIR]`);
    }
  }
  return options;
}

function filesUnder(directory) {
  return readdirSync(directory).flatMap((name) => {
    const full = path.join(directory, name);
    return statSync(full).isDirectory() ? filesUnder(full) : [full];
  });
}

function missingReplacementVariables(projectDirectory) {
  const project = JSON.parse(readFileSync(path.join(projectDirectory, 'sfdx-project.json'), 'utf8'));
  const names = new Set((project.replacements ?? []).map((entry) => entry.replaceWithEnv).filter(Boolean));
  return [...names].filter((name) => !process.env[name]).sort();
}

async function main() {
  const options = parseArguments(process.argv.slice(2));
  const missing = missingReplacementVariables(options.project);
  if (missing.length > 0) {
    throw new Error(`set ${missing.join(', ')}: sfdx-project.json replaces placeholders with them`);
  }
  const packageDirectories = JSON.parse(
    readFileSync(path.join(options.project, 'sfdx-project.json'), 'utf8'),
  ).packageDirectories.map((entry) => path.join(options.project, entry.path));

  const components = ComponentSet.fromSource(packageDirectories);
  components.projectDirectory = options.project;
  const sources = components.getSourceComponents().toArray();
  if (sources.length === 0) {
    throw new Error(`no metadata found under ${packageDirectories.join(', ')}`);
  }
  // The library passes over files it cannot place (an Apex class without its -meta.xml, a file in a
  // folder no type uses); a deploy would leave them out without a word, so they are errors here.
  const covered = new Set([...(components.forceIgnoredPaths ?? [])]);
  for (const component of sources) {
    [component.xml, ...component.walkContent()].filter(Boolean).forEach((file) => covered.add(file));
  }
  const strays = packageDirectories.flatMap(filesUnder).filter((file) => !covered.has(file));
  if (strays.length > 0) {
    throw new Error(`not part of any metadata component: ${strays.map((file) => path.relative(options.project, file)).join(', ')}`);
  }

  // The library applies replacements when it writes a zip (a deploy); this switch makes it apply
  // them when it writes a directory too.
  process.env.SF_APPLY_REPLACEMENTS_ON_CONVERT = 'true';
  const output = options.output ?? mkdtempSync(path.join(tmpdir(), 'sfintacct-package-'));
  try {
    const result = await new MetadataConverter().convert(components, 'metadata', {
      type: 'directory',
      outputDirectory: output,
      packageName: 'sfintacct',
      genUniqueDir: false,
    });
    const converted = result.converted ?? [];
    // Child components (fields, list views) are written inside their object's file.
    const key = (component) => `${component.type.name}:${component.fullName}`;
    const written = new Set(converted.map(key));
    const notWritten = sources.map((component) => key(component.parent ?? component)).filter((name) => !written.has(name));
    if (notWritten.length > 0) {
      throw new Error(`not converted: ${[...new Set(notWritten)].join(', ')}`);
    }
    const leftOver = filesUnder(result.packagePath).filter((file) => PLACEHOLDER.test(readFileSync(file, 'utf8')));
    if (leftOver.length > 0) {
      throw new Error(`placeholders left in ${leftOver.map((file) => path.relative(output, file)).join(', ')}`);
    }
    const byType = new Map();
    for (const component of converted) {
      byType.set(component.type.name, (byType.get(component.type.name) ?? 0) + 1);
    }
    console.log(`converted ${converted.length} components to Metadata API format:`);
    for (const [type, count] of [...byType].sort()) {
      console.log(`  ${type}: ${count}`);
    }
  } finally {
    if (!options.output) {
      rmSync(output, { recursive: true, force: true });
    }
  }
}

main().catch((error) => {
  console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
