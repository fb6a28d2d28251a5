/**
 * models.config → a validated, resolved `ServerConfig`.
 *
 * Two steps, each with errors that name file:line:col and the field:
 *   1. syntax: TF's text format, parsed against `tensorflow.serving.ModelServerConfig` from protos/;
 *   2. meaning: the JSON schema in config/model-server-config.schema.json (ajv), then the checks a
 *      schema cannot express (unique names, base paths).
 *
 * `base_path` may be absolute, or relative to the directory holding the config file (an extension:
 * TF Serving insists on absolute paths). URIs (gs://, s3://, hdfs://) are refused: versions are read
 * from the local file system.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ErrorObject } from 'ajv';
import type protobuf from 'protobufjs';
import { loadProtoRoot } from '../../common/protos.js';
import { parseTextFormat, type SourcePos } from '../../common/text-format.js';
import type { TrafficConfig } from './traffic-config.js';

export type Platform = 'tensorflow' | 'onnx';

export type VersionPolicy =
  | { kind: 'latest'; numVersions: number }
  | { kind: 'all' }
  | { kind: 'specific'; versions: number[] };

export interface ModelConfig {
  name: string;
  /** Absolute path of the directory holding the numeric version folders. */
  basePath: string;
  platform: Platform;
  policy: VersionPolicy;
  /** label → version, as written in the config. */
  labels: Record<string, number>;
}

export interface ServerConfig {
  /** Where the config came from: a file path, or a description such as `--model_base_path`. */
  source: string;
  models: ModelConfig[];
  /** Label splits and mirrors from --traffic_config_file, checked against `models`. */
  traffic?: TrafficConfig;
}

export class ConfigError extends Error {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  readonly field: string | undefined;
  constructor(file: string, pos: SourcePos | undefined, field: string | undefined, detail: string) {
    const where = pos ? `${file}:${pos.line}:${pos.col}` : file;
    super(`${where}: ${field ? `${field}: ` : ''}${detail}`);
    this.name = 'ConfigError';
    this.file = file;
    this.line = pos?.line ?? 0;
    this.col = pos?.col ?? 0;
    this.field = field;
  }
}

const SCHEMA_PATH = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../../config/model-server-config.schema.json',
);

let cachedType: protobuf.Type | undefined;
function serverConfigType(): protobuf.Type {
  cachedType ??= loadProtoRoot(['tensorflow_serving/config/model_server_config.proto']).lookupType(
    'tensorflow.serving.ModelServerConfig',
  );
  return cachedType;
}

let cachedValidator: ReturnType<Ajv['compile']> | undefined;
function validator(): ReturnType<Ajv['compile']> {
  if (!cachedValidator) {
    const ajv = new Ajv({ allErrors: true, strict: true });
    cachedValidator = ajv.compile(JSON.parse(readFileSync(SCHEMA_PATH, 'utf8')));
  }
  return cachedValidator;
}

/** Reads and validates a models.config file. Throws `ConfigError` (syntax or meaning) or an fs error. */
export async function loadConfigFile(file: string): Promise<ServerConfig> {
  const abs = path.resolve(file);
  const text = await readFile(abs, 'utf8');
  return parseServerConfig(text, abs);
}

/** Parses and validates config text; relative base paths resolve against `path.dirname(file)`. */
export function parseServerConfig(text: string, file: string): ServerConfig {
  let parsed;
  try {
    parsed = parseTextFormat(text, serverConfigType(), file);
  } catch (err) {
    if (err instanceof Error && 'line' in err && 'col' in err) {
      const e = err as Error & { line: number; col: number; field?: string };
      // The parser's message already carries file:line:col.
      const ce = new ConfigError(file, { line: e.line, col: e.col }, e.field, '');
      ce.message = e.message;
      throw ce;
    }
    throw err;
  }
  return validateServerConfig(parsed.value, parsed.positions, file);
}

/**
 * Validates a ModelServerConfig given as a decoded message (snake_case plain object, e.g. from a gRPC
 * ReloadConfigRequest) with the same rules as a file. Errors name the field but no line:col.
 */
export function serverConfigFromObject(value: Record<string, unknown>, source: string): ServerConfig {
  return validateServerConfig(value, new Map(), source);
}

/** A one-model config, as tensorflow_model_server builds from --model_name and --model_base_path. */
export function singleModelConfig(name: string, basePath: string, platform: Platform): ServerConfig {
  return {
    source: '--model_base_path',
    models: [{ name, basePath: path.resolve(basePath), platform, policy: { kind: 'latest', numVersions: 1 }, labels: {} }],
  };
}

interface RawModelConfig {
  name: string;
  base_path: string;
  model_platform: string;
  model_version_policy?: {
    latest?: { num_versions?: number };
    all?: object;
    specific?: { versions?: number[] };
  };
  version_labels?: Record<string, number>;
}

/** Where `field` (a path like `a.b[2].c`) was written, or the nearest enclosing field that has a position. */
export function nearestPosition(positions: Map<string, SourcePos>, field: string): SourcePos | undefined {
  for (let f = field; f; f = f.replace(/(\.[^.[]+|\[\d+\])$/, '')) {
    const p = positions.get(f);
    if (p) return p;
    if (!/(\.[^.[]+|\[\d+\])$/.test(f)) break;
  }
  return undefined;
}

function validateServerConfig(
  value: Record<string, unknown>,
  positions: Map<string, SourcePos>,
  file: string,
): ServerConfig {
  const fail = (field: string, detail: string): never => {
    throw new ConfigError(file, nearestPosition(positions, field), field, detail);
  };

  if ('custom_model_config' in value) {
    fail('custom_model_config', 'custom_model_config is not supported; use model_config_list');
  }
  const validate = validator();
  if (!validate(value)) {
    const err = (validate.errors ?? [])[0] as ErrorObject;
    const field = fieldPath(err);
    fail(field, describeAjvError(err));
  }

  const list = (value.model_config_list as { config?: RawModelConfig[] } | undefined)?.config ?? [];
  const seen = new Set<string>();
  const models: ModelConfig[] = list.map((raw, i) => {
    const at = `model_config_list.config[${i}]`;
    if (seen.has(raw.name)) fail(`${at}.name`, `Illegal to list model ${raw.name} multiple times in config list`);
    seen.add(raw.name);
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(raw.base_path)) {
      fail(`${at}.base_path`, `only local directories are supported; got base_path()=${raw.base_path}`);
    }
    const basePath = path.resolve(path.dirname(file), raw.base_path);
    return {
      name: raw.name,
      basePath,
      platform: raw.model_platform as Platform,
      policy: toPolicy(raw.model_version_policy),
      labels: { ...(raw.version_labels ?? {}) },
    };
  });
  return { source: file, models };
}

function toPolicy(raw: RawModelConfig['model_version_policy']): VersionPolicy {
  if (raw?.all) return { kind: 'all' };
  if (raw?.specific) return { kind: 'specific', versions: [...(raw.specific.versions ?? [])] };
  // Unset policy, or `latest {}` with num_versions 0, both mean latest(1), as in TF Serving.
  return { kind: 'latest', numVersions: Math.max(raw?.latest?.num_versions ?? 1, 1) };
}

/** `/model_config_list/config/0/version_labels/x` → `model_config_list.config[0].version_labels.x`. */
function fieldPath(err: ErrorObject): string {
  let out = '';
  for (const part of err.instancePath.split('/').slice(1)) {
    const key = part.replace(/~1/g, '/').replace(/~0/g, '~');
    out += /^\d+$/.test(key) ? `[${key}]` : out ? `.${key}` : key;
  }
  if (err.keyword === 'required') {
    const missing = (err.params as { missingProperty: string }).missingProperty;
    return out ? `${out}.${missing}` : missing;
  }
  if (err.keyword === 'propertyNames') {
    const name = (err.params as { propertyName: string }).propertyName;
    return `${out}.${name}`;
  }
  return out;
}

function describeAjvError(err: ErrorObject): string {
  switch (err.keyword) {
    case 'required': {
      const missing = (err.params as { missingProperty: string }).missingProperty;
      if (missing === 'model_platform') {
        return 'model_platform is required (one of "tensorflow", "onnx")';
      }
      return `${missing} is required`;
    }
    case 'enum':
      return `must be one of ${(err.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'minimum':
      return `must be >= ${(err.params as { limit: number }).limit}`;
    case 'maxProperties':
      return 'only one of latest, all or specific may be set';
    case 'pattern':
    case 'propertyNames':
      return 'must be non-empty and contain neither "/" nor ":"';
    case 'minLength':
      return 'must not be empty';
    default:
      return err.message ?? 'is invalid';
  }
}
