/**
 * The traffic file (--traffic_config_file) → a validated `TrafficConfig`.
 *
 * Text format of our own message `modelgate.traffic.TrafficConfig` (protos/modelgate/traffic/), parsed
 * by the same text-format parser as models.config, so errors name `file:line:col` and the field. It
 * is kept apart from models.config so that file stays readable by TF Serving. Checks beyond syntax:
 *
 *   - every `model_name` is a model of the models.config it is applied with (a typo is an error, not a
 *     split that silently does nothing; remove a model's splits and mirrors before the model);
 *   - a label is split at most once and mirrored at most once; label names follow models.config's rule;
 *   - a split has at least one version, versions are >= 1 and the weights do not sum to 0;
 *   - a mirror copies 0 < percent <= 100 of the requests of a label that exists (in models.config or
 *     split here) to a version >= 1.
 *
 * The result is plain JSON (it travels inside the desired state published to Redis).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type protobuf from 'protobufjs';
import { loadProtoRoot } from '../../common/protos.js';
import { parseTextFormat } from '../../common/text-format.js';
import { ConfigError, nearestPosition, type ServerConfig } from './model-config.js';

export interface VersionWeight {
  version: number;
  weight: number;
}

export interface LabelSplitConfig {
  model: string;
  label: string;
  /** By version, ascending; weights as written (relative). */
  weights: VersionWeight[];
}

export interface MirrorConfig {
  model: string;
  label: string;
  toVersion: number;
  /** 0 < percent <= 100. */
  percent: number;
}

export interface TrafficConfig {
  /** The file it came from. */
  source: string;
  splits: LabelSplitConfig[];
  mirrors: MirrorConfig[];
}

let cachedType: protobuf.Type | undefined;
function trafficType(): protobuf.Type {
  cachedType ??= loadProtoRoot(['modelgate/traffic/traffic_config.proto']).lookupType('modelgate.traffic.TrafficConfig');
  return cachedType;
}

const LABEL = /^[^/:]+$/;

interface RawSplit {
  model_name?: string;
  label?: string;
  version_weights?: Record<string, number>;
}

interface RawMirror {
  model_name?: string;
  label?: string;
  to_version?: number;
  percent?: number;
}

/** Reads and checks a traffic file against the models of `models`. */
export async function loadTrafficFile(file: string, models: ServerConfig): Promise<TrafficConfig> {
  const abs = path.resolve(file);
  return parseTrafficConfig(await readFile(abs, 'utf8'), abs, models);
}

/** Parses and checks traffic text; `file` is only for messages. Throws ConfigError or TextFormatError. */
export function parseTrafficConfig(text: string, file: string, models: ServerConfig): TrafficConfig {
  const { value, positions } = parseTextFormat(text, trafficType(), file);
  const fail = (field: string, detail: string): never => {
    throw new ConfigError(file, nearestPosition(positions, field), field, detail);
  };
  const byName = new Map(models.models.map((m) => [m.name, m]));
  const checkModel = (at: string, name: string | undefined) => {
    if (!name) fail(`${at}.model_name`, 'model_name is required');
    if (!byName.has(name as string)) fail(`${at}.model_name`, `model '${name}' is not in the model config (${models.source})`);
    return name as string;
  };
  const checkLabel = (at: string, label: string | undefined) => {
    if (!label) fail(`${at}.label`, 'label is required');
    if (!LABEL.test(label as string)) fail(`${at}.label`, 'must be non-empty and contain neither "/" nor ":"');
    return label as string;
  };
  /** The (model, label) a split or mirror names, each at most once per kind. */
  const target = (at: string, raw: { model_name?: string; label?: string }, seen: Set<string>, kind: string) => {
    const model = checkModel(at, raw.model_name);
    const label = checkLabel(at, raw.label);
    const key = `${model}\u0000${label}`;
    if (seen.has(key)) fail(at, `label '${label}' of model '${model}' is ${kind} more than once`);
    seen.add(key);
    return { model, label, key };
  };

  const splits: LabelSplitConfig[] = [];
  const split = new Set<string>();
  ((value.label_split ?? []) as RawSplit[]).forEach((raw, i) => {
    const at = `label_split[${i}]`;
    const { model, label } = target(at, raw, split, 'split');
    const entries = Object.entries(raw.version_weights ?? {});
    if (entries.length === 0) fail(`${at}.version_weights`, 'a split needs at least one version_weights entry');
    const weights: VersionWeight[] = [];
    let total = 0;
    for (const [k, weight] of entries) {
      const version = Number(k);
      if (!Number.isSafeInteger(version) || version < 1) fail(`${at}.version_weights.${k}`, `version must be >= 1, got ${k}`);
      weights.push({ version, weight });
      total += weight;
    }
    if (total === 0) fail(`${at}.version_weights`, 'the weights sum to 0');
    weights.sort((a, b) => a.version - b.version);
    splits.push({ model, label, weights });
  });

  const mirrors: MirrorConfig[] = [];
  const mirrored = new Set<string>();
  ((value.mirror ?? []) as RawMirror[]).forEach((raw, i) => {
    const at = `mirror[${i}]`;
    const { model, label, key } = target(at, raw, mirrored, 'mirrored');
    const labels = byName.get(model)?.labels ?? {};
    if (!Object.hasOwn(labels, label) && !split.has(key)) {
      fail(`${at}.label`, `model '${model}' has no version label '${label}' (in the model config or split in this file)`);
    }
    const toVersion = raw.to_version ?? 0;
    if (!Number.isSafeInteger(toVersion) || toVersion < 1) fail(`${at}.to_version`, `to_version must be >= 1, got ${toVersion}`);
    const percent = raw.percent ?? 0;
    if (!(percent > 0 && percent <= 100)) fail(`${at}.percent`, `percent must be > 0 and <= 100, got ${percent}`);
    mirrors.push({ model, label, toVersion, percent });
  });
  return { source: file, splits, mirrors };
}

/** The splits and mirrors of one model, keyed by label (what the routing of that model needs). */
export interface ModelTraffic {
  splits: ReadonlyMap<string, LabelSplitConfig>;
  mirrors: ReadonlyMap<string, MirrorConfig>;
}

export function trafficByModel(traffic: TrafficConfig | undefined): Map<string, ModelTraffic> {
  const out = new Map<string, { splits: Map<string, LabelSplitConfig>; mirrors: Map<string, MirrorConfig> }>();
  const of = (model: string) => {
    let t = out.get(model);
    if (!t) out.set(model, (t = { splits: new Map(), mirrors: new Map() }));
    return t;
  };
  for (const s of traffic?.splits ?? []) of(s.model).splits.set(s.label, s);
  for (const m of traffic?.mirrors ?? []) of(m.model).mirrors.set(m.label, m);
  return out;
}
