import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { PROTOS_DIR, loadProtoRoot } from '../../common/protos.js';
import { type ParsedMessage, TextFormatError, parseTextFormat } from '../../common/text-format.js';

const root = loadProtoRoot([
  'tensorflow_serving/config/model_server_config.proto',
  'tensorflow_serving/config/monitoring_config.proto',
  'google/protobuf/wrappers.proto',
]);
const ServerConfig = root.lookupType('tensorflow.serving.ModelServerConfig');
const ModelConfig = root.lookupType('tensorflow.serving.ModelConfig');
const SourceConfig = root.lookupType('tensorflow.serving.FileSystemStoragePathSourceConfig');

const FILE = 'models.config';

function parse(text: string, type = ServerConfig): ParsedMessage {
  return parseTextFormat(text, type, FILE);
}

function lines(...ls: string[]): string {
  return ls.join('\n');
}

interface Expected {
  line: number;
  col: number;
  detail: string;
  field?: string;
}

function assertError(text: string, want: Expected, type = ServerConfig): TextFormatError {
  let caught: unknown;
  try {
    parse(text, type);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof TextFormatError, `expected TextFormatError, got ${String(caught)}`);
  assert.equal(caught.message, `${FILE}:${want.line}:${want.col}: ${want.detail}`);
  assert.equal(caught.detail, want.detail);
  assert.equal(caught.file, FILE);
  assert.equal(caught.line, want.line);
  assert.equal(caught.col, want.col);
  assert.equal(caught.field, want.field);
  return caught;
}

describe('loadProtoRoot', () => {
  it('resolves PROTOS_DIR to the repository protos/ directory', () => {
    assert.ok(existsSync(path.join(PROTOS_DIR, 'tensorflow_serving/config/model_server_config.proto')));
  });

  it('caches roots by file list and keeps snake_case field names', () => {
    assert.equal(
      loadProtoRoot([
        'tensorflow_serving/config/model_server_config.proto',
        'tensorflow_serving/config/monitoring_config.proto',
        'google/protobuf/wrappers.proto',
      ]),
      root,
    );
    assert.deepEqual(Object.keys(ModelConfig.fields).sort(), [
      'base_path',
      'logging_config',
      'model_platform',
      'model_type',
      'model_version_policy',
      'name',
      'version_labels',
    ]);
    assert.equal(ModelConfig.fields.model_version_policy!.id, 7);
    assert.equal(ModelConfig.fields.version_labels!.id, 8);
    assert.equal(ModelConfig.fields.logging_config!.id, 6);
    const policy = root.lookupType('tensorflow.serving.FileSystemStoragePathSourceConfig.ServableVersionPolicy');
    assert.deepEqual(
      policy.oneofsArray.map((o) => [o.name, o.oneof]),
      [['policy_choice', ['latest', 'all', 'specific']]],
    );
    assert.equal(policy.fields.specific!.id, 102);
  });
});

describe('parseTextFormat: syntax', () => {
  it('parses the TF Serving documentation example', () => {
    const text = lines(
      'model_config_list {',
      '  config {',
      "    name: 'my_first_model'",
      "    base_path: '/tmp/my_first_model/'",
      "    model_platform: 'tensorflow'",
      '    model_version_policy { specific { versions: 42 versions: 43 } }',
      "    version_labels { key: 'stable' value: 42 }",
      "    version_labels { key: 'canary' value: 43 }",
      '  }',
      '  config { name: "half_plus_three", base_path: "/models/half_plus_three", model_platform: "tensorflow" }',
      '}',
    );
    const { value, positions } = parse(text);
    assert.deepEqual(value, {
      model_config_list: {
        config: [
          {
            name: 'my_first_model',
            base_path: '/tmp/my_first_model/',
            model_platform: 'tensorflow',
            model_version_policy: { specific: { versions: [42, 43] } },
            version_labels: { stable: 42, canary: 43 },
          },
          { name: 'half_plus_three', base_path: '/models/half_plus_three', model_platform: 'tensorflow' },
        ],
      },
    });
    assert.deepEqual(Object.fromEntries(positions), {
      model_config_list: { line: 1, col: 1 },
      'model_config_list.config': { line: 2, col: 3 },
      'model_config_list.config[0]': { line: 2, col: 3 },
      'model_config_list.config[0].name': { line: 3, col: 5 },
      'model_config_list.config[0].base_path': { line: 4, col: 5 },
      'model_config_list.config[0].model_platform': { line: 5, col: 5 },
      'model_config_list.config[0].model_version_policy': { line: 6, col: 5 },
      'model_config_list.config[0].model_version_policy.specific': { line: 6, col: 28 },
      'model_config_list.config[0].model_version_policy.specific.versions': { line: 6, col: 39 },
      'model_config_list.config[0].model_version_policy.specific.versions[0]': { line: 6, col: 39 },
      'model_config_list.config[0].model_version_policy.specific.versions[1]': { line: 6, col: 52 },
      'model_config_list.config[0].version_labels': { line: 7, col: 5 },
      'model_config_list.config[0].version_labels.stable': { line: 7, col: 5 },
      'model_config_list.config[0].version_labels.canary': { line: 8, col: 5 },
      'model_config_list.config[1]': { line: 10, col: 3 },
      'model_config_list.config[1].name': { line: 10, col: 12 },
      'model_config_list.config[1].base_path': { line: 10, col: 37 },
      'model_config_list.config[1].model_platform': { line: 10, col: 75 },
    });
  });

  it('accepts the colon-before-brace style with comma separators', () => {
    const { value, positions } = parse(
      lines(
        'model_config_list: {',
        '  config: { name: "a", base_path: "/a", model_platform: "tensorflow" },',
        '  config: { name: "b", base_path: "/b", model_platform: "onnx" }',
        '}',
      ),
    );
    assert.deepEqual(value, {
      model_config_list: {
        config: [
          { name: 'a', base_path: '/a', model_platform: 'tensorflow' },
          { name: 'b', base_path: '/b', model_platform: 'onnx' },
        ],
      },
    });
    assert.deepEqual(positions.get('model_config_list.config[1].model_platform'), { line: 3, col: 41 });
  });

  it('accepts ";" and "," separators, at most one after each field', () => {
    const { value } = parse('name: "a"; base_path: "/b", model_platform: "tf";', ModelConfig);
    assert.deepEqual(value, { name: 'a', base_path: '/b', model_platform: 'tf' });
    assertError('name: "a";; base_path: "/b"', { line: 1, col: 11, detail: 'Expected field name, got ";"' }, ModelConfig);
  });

  it('accepts fields separated by whitespace only, all on one line', () => {
    const { value } = parse('name:"a"base_path:\'/b\'model_platform:"tf"', ModelConfig);
    assert.deepEqual(value, { name: 'a', base_path: '/b', model_platform: 'tf' });
  });

  it('skips # comments, but not inside strings', () => {
    const { value, positions } = parse(
      lines(
        '# models served by this gateway',
        'model_config_list { # the list',
        '  config {',
        '    name: "a#b" # trailing comment with "quotes" and { braces',
        "    base_path: '/models/#1'",
        '    # model_platform: "commented out"',
        '  }',
        '}',
        '# end',
      ),
    );
    assert.deepEqual(value, { model_config_list: { config: [{ name: 'a#b', base_path: '/models/#1' }] } });
    assert.deepEqual(positions.get('model_config_list'), { line: 2, col: 1 });
  });

  it('accepts <...> as message delimiters, mixed with {...}', () => {
    const { value } = parse(
      'model_config_list < config < name: "a" model_version_policy { latest < num_versions: 3 > } > config: <name: "b"> >',
    );
    assert.deepEqual(value, {
      model_config_list: {
        config: [{ name: 'a', model_version_policy: { latest: { num_versions: 3 } } }, { name: 'b' }],
      },
    });
  });

  it('parses every version policy form', () => {
    const policyOf = (text: string) =>
      (parse(`model_version_policy ${text}`, ModelConfig).value as { model_version_policy: unknown })
        .model_version_policy;
    assert.deepEqual(policyOf('{ latest { num_versions: 2 } }'), { latest: { num_versions: 2 } });
    assert.deepEqual(policyOf('{ latest {} }'), { latest: {} });
    assert.deepEqual(policyOf('{ all {} }'), { all: {} });
    assert.deepEqual(policyOf('{ all: <> }'), { all: {} });
    assert.deepEqual(policyOf('{ specific { versions: 1 } }'), { specific: { versions: [1] } });
    assert.deepEqual(policyOf('{ specific { versions: [1, 2, 3] versions: 4 } }'), {
      specific: { versions: [1, 2, 3, 4] },
    });
    assert.deepEqual(policyOf('{ specific { versions: [] } }'), { specific: { versions: [] } });
    assert.deepEqual(policyOf('{ specific {} }'), { specific: {} });
  });

  it('records positions of list elements at the element', () => {
    const { positions } = parse('model_version_policy { specific { versions: [42,\n  43] } }', ModelConfig);
    assert.deepEqual(positions.get('model_version_policy.specific.versions'), { line: 1, col: 35 });
    assert.deepEqual(positions.get('model_version_policy.specific.versions[0]'), { line: 1, col: 46 });
    assert.deepEqual(positions.get('model_version_policy.specific.versions[1]'), { line: 2, col: 3 });
  });

  it('accepts a list of messages for a repeated message field', () => {
    const { value, positions } = parse('model_config_list { config: [{ name: "a" }, < name: "b" >] config { name: "c" } }');
    assert.deepEqual(value, { model_config_list: { config: [{ name: 'a' }, { name: 'b' }, { name: 'c' }] } });
    assert.deepEqual(positions.get('model_config_list.config[0]'), { line: 1, col: 30 });
    assert.deepEqual(positions.get('model_config_list.config[1].name'), { line: 1, col: 47 });
    assert.deepEqual(positions.get('model_config_list.config[2]'), { line: 1, col: 60 });
  });

  it('parses map fields in every entry form', () => {
    const { value, positions } = parse(
      lines(
        "version_labels { key: 'stable' value: 42 }",
        'version_labels: { key: "canary", value: 0x2B }',
        'version_labels < value: 7; key: "old" >',
        'version_labels: [{ key: "a" value: 1 }, { key: "b" value: 2 }]',
      ),
      ModelConfig,
    );
    assert.deepEqual(value, { version_labels: { stable: 42, canary: 43, old: 7, a: 1, b: 2 } });
    assert.deepEqual(positions.get('version_labels'), { line: 1, col: 1 });
    assert.deepEqual(positions.get('version_labels.stable'), { line: 1, col: 1 });
    assert.deepEqual(positions.get('version_labels.canary'), { line: 2, col: 1 });
    assert.deepEqual(positions.get('version_labels.old'), { line: 3, col: 1 });
    assert.deepEqual(positions.get('version_labels.a'), { line: 4, col: 18 });
    assert.deepEqual(positions.get('version_labels.b'), { line: 4, col: 41 });
  });

  it('fills a missing map key or value with its default, and keeps the last of repeated keys', () => {
    const { value, positions } = parse(
      lines('version_labels { key: "x" }', 'version_labels { value: 5 }', 'version_labels { key: "x" value: 9 }'),
      ModelConfig,
    );
    assert.deepEqual(value, { version_labels: { x: 9, '': 5 } });
    assert.deepEqual(positions.get('version_labels.x'), { line: 3, col: 1 });
    assert.deepEqual(parse('version_labels: []', ModelConfig).value, { version_labels: {} });
  });

  it('decodes both quote styles and C escapes', () => {
    const nameOf = (literal: string) => (parse(`name: ${literal}`, ModelConfig).value as { name: string }).name;
    assert.equal(nameOf('"double"'), 'double');
    assert.equal(nameOf("'single'"), 'single');
    assert.equal(nameOf(`"it's"`), "it's");
    assert.equal(nameOf(`'say "hi"'`), 'say "hi"');
    assert.equal(nameOf(String.raw`"a\"b\'c"`), `a"b'c`);
    assert.equal(nameOf(String.raw`'a\'b\"c'`), `a'b"c`);
    assert.equal(nameOf(String.raw`"tab\tnl\ncr\rbs\\q\?"`), 'tab\tnl\ncr\rbs\\q?');
    assert.equal(nameOf(String.raw`"\a\b\f\v"`), '\x07\b\f\v');
    assert.equal(nameOf(String.raw`"\x41\x4a\x4B\x7"`), 'AJK\x07');
    assert.equal(nameOf(String.raw`"\101\60\0x"`), 'A0\0x');
    assert.equal(nameOf(String.raw`"\303\251t\xc3\xa9"`), 'été');
    assert.equal(nameOf(String.raw`"caf\u00e9 \U0001F600"`), 'café 😀');
    assert.equal(nameOf('"naïve ✓"'), 'naïve ✓');
    assert.equal(nameOf('""'), '');
  });

  it('concatenates adjacent string literals, across lines and quote styles', () => {
    const { value } = parse(
      lines('name: "half" \'_plus\' "_three"', 'base_path: "/models/"', '  # comment between parts', '  "hp3"'),
      ModelConfig,
    );
    assert.deepEqual(value, { name: 'half_plus_three', base_path: '/models/hp3' });
  });

  it('parses integers in decimal, hex and octal, with a minus sign', () => {
    const secondsOf = (literal: string) =>
      (parse(`file_system_poll_wait_seconds: ${literal}`, SourceConfig).value as Record<string, unknown>)
        .file_system_poll_wait_seconds;
    assert.equal(secondsOf('30'), 30);
    assert.equal(secondsOf('0'), 0);
    assert.equal(secondsOf('0x1F'), 31);
    assert.equal(secondsOf('0X1f'), 31);
    assert.equal(secondsOf('017'), 15);
    assert.equal(secondsOf('-1'), -1);
    assert.equal(secondsOf('- 0x10'), -16);
    assert.equal(secondsOf('9007199254740991'), Number.MAX_SAFE_INTEGER);
    assert.equal(secondsOf('-9007199254740991'), -Number.MAX_SAFE_INTEGER);
  });

  it('parses 32- and 64-bit integer types to their full (safe) range', () => {
    const Int32 = root.lookupType('google.protobuf.Int32Value');
    const UInt32 = root.lookupType('google.protobuf.UInt32Value');
    const UInt64 = root.lookupType('google.protobuf.UInt64Value');
    assert.deepEqual(parse('value: -2147483648', Int32).value, { value: -2147483648 });
    assert.deepEqual(parse('value: 2147483647', Int32).value, { value: 2147483647 });
    assert.deepEqual(parse('value: 0xFFFFFFFF', UInt32).value, { value: 4294967295 });
    assert.deepEqual(parse('value: 9007199254740991', UInt64).value, { value: Number.MAX_SAFE_INTEGER });
  });

  it('parses floating-point values, including inf and nan', () => {
    const rateOf = (literal: string) =>
      (parse(`sampling_config { sampling_rate: ${literal} }`, root.lookupType('tensorflow.serving.LoggingConfig'))
        .value as { sampling_config: { sampling_rate: number } }).sampling_config.sampling_rate;
    assert.equal(rateOf('0.5'), 0.5);
    assert.equal(rateOf('.25'), 0.25);
    assert.equal(rateOf('5.'), 5);
    assert.equal(rateOf('1e-3'), 0.001);
    assert.equal(rateOf('1E2'), 100);
    assert.equal(rateOf('2.5f'), 2.5);
    assert.equal(rateOf('1'), 1);
    assert.equal(rateOf('010'), 10);
    assert.equal(rateOf('-0.75'), -0.75);
    assert.equal(rateOf('inf'), Infinity);
    assert.equal(rateOf('-inf'), -Infinity);
    assert.equal(rateOf('Infinity'), Infinity);
    assert.equal(rateOf('-INF'), -Infinity);
    assert.ok(Number.isNaN(rateOf('nan')));
    assert.ok(Number.isNaN(rateOf('NaN')));
    const Float = root.lookupType('google.protobuf.FloatValue');
    assert.deepEqual(parse('value: 1.5', Float).value, { value: 1.5 });
  });

  it('parses booleans in every spelling', () => {
    const flagOf = (literal: string) =>
      (parse(`fail_if_zero_versions_at_startup: ${literal}`, SourceConfig).value as Record<string, unknown>)
        .fail_if_zero_versions_at_startup;
    for (const t of ['true', 'True', 't', '1']) assert.equal(flagOf(t), true, t);
    for (const f of ['false', 'False', 'f', '0']) assert.equal(flagOf(f), false, f);
  });

  it('parses enums by name or number, giving the name', () => {
    assert.deepEqual(parse('model_type: TENSORFLOW', ModelConfig).value, { model_type: 'TENSORFLOW' });
    assert.deepEqual(parse('model_type: 2', ModelConfig).value, { model_type: 'OTHER' });
    assert.deepEqual(parse('model_type: 0', ModelConfig).value, { model_type: 'MODEL_TYPE_UNSPECIFIED' });
  });

  it('parses nested messages of other types, and the other config protos', () => {
    const { value, positions } = parse(
      lines(
        'servable_name: "m" base_path: "/m" file_system_poll_wait_seconds: 5',
        'servable_versions_always_present: true',
        'servables { servable_name: "x" base_path: "/x" servable_version_policy { all {} } }',
      ),
      SourceConfig,
    );
    assert.deepEqual(value, {
      servable_name: 'm',
      base_path: '/m',
      file_system_poll_wait_seconds: 5,
      servable_versions_always_present: true,
      servables: [{ servable_name: 'x', base_path: '/x', servable_version_policy: { all: {} } }],
    });
    assert.deepEqual(positions.get('servables[0].servable_version_policy.all'), { line: 3, col: 74 });

    const Monitoring = root.lookupType('tensorflow.serving.MonitoringConfig');
    assert.deepEqual(parse('prometheus_config { enable: true, path: "/metrics" }', Monitoring).value, {
      prometheus_config: { enable: true, path: '/metrics' },
    });
    assert.deepEqual(
      parse(
        'logging_config { log_collector_config { type: "file" filename_prefix: "/tmp/log" } sampling_config { sampling_rate: 0.1 } }',
        ModelConfig,
      ).value,
      { logging_config: { log_collector_config: { type: 'file', filename_prefix: '/tmp/log' }, sampling_config: { sampling_rate: 0.1 } } },
    );
  });

  it('parses a plainly written Any, with bytes as Uint8Array', () => {
    const { value } = parse(String.raw`custom_model_config { type_url: "type.googleapis.com/x.Y" value: "\001\xffA" }`);
    assert.deepEqual(value, {
      custom_model_config: { type_url: 'type.googleapis.com/x.Y', value: Uint8Array.of(1, 255, 65) },
    });
  });

  it('gives an empty message for empty or comment-only input', () => {
    assert.deepEqual(parse('').value, {});
    assert.deepEqual(parse('  \n# nothing here\n\n').value, {});
    assert.deepEqual(parse('model_config_list {}').value, { model_config_list: {} });
    assert.deepEqual(parse('').positions.size, 0);
  });

  it('counts lines and columns with CRLF line endings, tabs and a BOM', () => {
    const { positions } = parse('\uFEFFname: "a"\r\n\tbase_path: "/b"\r\n', ModelConfig);
    assert.deepEqual(positions.get('name'), { line: 1, col: 1 });
    assert.deepEqual(positions.get('base_path'), { line: 2, col: 2 });
  });

  it('defaults the file name to <input>', () => {
    assert.throws(() => parseTextFormat('nam: "x"', ModelConfig), {
      name: 'TextFormatError',
      message: '<input>:1:1: Message type "tensorflow.serving.ModelConfig" has no field named "nam".',
      file: '<input>',
    });
  });
});

describe('parseTextFormat: errors', () => {
  it('reports an unknown field at its name', () => {
    const err = assertError(lines('model_config_list {', '  config {', '    nam: "x"', '  }', '}'), {
      line: 3,
      col: 5,
      detail: 'Message type "tensorflow.serving.ModelConfig" has no field named "nam".',
      field: 'nam',
    });
    assert.equal(err.path, 'model_config_list.config[0].nam');
    assertError('model_config { }', {
      line: 1,
      col: 1,
      detail: 'Message type "tensorflow.serving.ModelServerConfig" has no field named "model_config".',
      field: 'model_config',
    });
    assertError('version_labels { key: "a" val: 1 }', {
      line: 1,
      col: 27,
      detail: 'Message type "tensorflow.serving.ModelConfig.VersionLabelsEntry" has no field named "val".',
      field: 'val',
    }, ModelConfig);
    assertError('constructor: 1', {
      line: 1,
      col: 1,
      detail: 'Message type "tensorflow.serving.ModelConfig" has no field named "constructor".',
      field: 'constructor',
    }, ModelConfig);
  });

  it('requires ":" before a scalar value', () => {
    assertError('model_config_list { config { name "x" } }', {
      line: 1,
      col: 35,
      detail: 'Expected ":", got string literal "x"',
      field: 'name',
    });
    assertError('model_version_policy { specific { versions 1 } }', {
      line: 1,
      col: 44,
      detail: 'Expected ":", got "1"',
      field: 'versions',
    }, ModelConfig);
  });

  it('reports type mismatches at the value', () => {
    assertError('model_version_policy { specific { versions: abc } }', {
      line: 1,
      col: 45,
      detail: 'Expected integer, got "abc"',
      field: 'versions',
    }, ModelConfig);
    assertError('model_version_policy { specific { versions: "42" } }', {
      line: 1,
      col: 45,
      detail: 'Expected integer, got string literal "42"',
      field: 'versions',
    }, ModelConfig);
    assertError('model_version_policy { specific { versions: 1.5 } }', {
      line: 1,
      col: 45,
      detail: 'Expected integer, got "1.5"',
      field: 'versions',
    }, ModelConfig);
    assertError('model_version_policy { specific { versions: [1, x] } }', {
      line: 1,
      col: 49,
      detail: 'Expected integer, got "x"',
      field: 'versions',
    }, ModelConfig);
    assertError('name: 42', { line: 1, col: 7, detail: 'Expected string, got "42"', field: 'name' }, ModelConfig);
    assertError('name: my_model', { line: 1, col: 7, detail: 'Expected string, got "my_model"', field: 'name' }, ModelConfig);
    assertError('logging_config { sampling_config { sampling_rate: "0.5" } }', {
      line: 1,
      col: 51,
      detail: 'Expected number, got string literal "0.5"',
      field: 'sampling_rate',
    }, ModelConfig);
    assertError('logging_config { sampling_config { sampling_rate: 0x10 } }', {
      line: 1,
      col: 51,
      detail: 'Expected decimal number, got "0x10"',
      field: 'sampling_rate',
    }, ModelConfig);
    assertError('fail_if_zero_versions_at_startup: yes', {
      line: 1,
      col: 35,
      detail: 'Invalid value for boolean field "fail_if_zero_versions_at_startup". Value: "yes".',
      field: 'fail_if_zero_versions_at_startup',
    }, SourceConfig);
    assertError('fail_if_zero_versions_at_startup: 2', {
      line: 1,
      col: 35,
      detail: 'Invalid value for boolean field "fail_if_zero_versions_at_startup". Value: "2".',
      field: 'fail_if_zero_versions_at_startup',
    }, SourceConfig);
    assertError('fail_if_zero_versions_at_startup: "true"', {
      line: 1,
      col: 35,
      detail: 'Expected boolean, got string literal "true"',
      field: 'fail_if_zero_versions_at_startup',
    }, SourceConfig);
    assertError('model_type: "TENSORFLOW"', {
      line: 1,
      col: 13,
      detail: 'Expected enum value name or number, got string literal "TENSORFLOW"',
      field: 'model_type',
    }, ModelConfig);
  });

  it('requires a message value for a message field', () => {
    assertError('model_config_list { config { model_version_policy: 42 } }', {
      line: 1,
      col: 52,
      detail: 'Expected "{" or "<", got "42"',
      field: 'model_version_policy',
    });
    assertError('model_config_list: "x"', {
      line: 1,
      col: 20,
      detail: 'Expected "{" or "<", got string literal "x"',
      field: 'model_config_list',
    });
  });

  it('reports integers out of range', () => {
    assertError('model_version_policy { latest { num_versions: -1 } }', {
      line: 1,
      col: 47,
      detail: 'Integer out of range for uint32 field "num_versions": -1',
      field: 'num_versions',
    }, ModelConfig);
    assertError('model_version_policy { latest { num_versions: 4294967296 } }', {
      line: 1,
      col: 47,
      detail: 'Integer out of range for uint32 field "num_versions": 4294967296',
      field: 'num_versions',
    }, ModelConfig);
    assertError('model_version_policy { latest { num_versions: 0x100000000 } }', {
      line: 1,
      col: 47,
      detail: 'Integer out of range for uint32 field "num_versions": 0x100000000',
      field: 'num_versions',
    }, ModelConfig);
    assertError('version_labels { key: "a" value: 9223372036854775808 }', {
      line: 1,
      col: 34,
      detail: 'Integer out of range for int64 field "value": 9223372036854775808',
      field: 'value',
    }, ModelConfig);
    assertError('model_version_policy { specific { versions: 9007199254740992 } }', {
      line: 1,
      col: 45,
      detail:
        'Integer out of range for int64 field "versions": 9007199254740992 exceeds the exactly representable range (±2^53-1)',
      field: 'versions',
    }, ModelConfig);
    assertError('value: 2147483648', {
      line: 1,
      col: 8,
      detail: 'Integer out of range for int32 field "value": 2147483648',
      field: 'value',
    }, root.lookupType('google.protobuf.Int32Value'));
  });

  it('reports unterminated strings at the opening quote', () => {
    assertError(lines('model_config_list {', '  config { name: "abc', '}'), {
      line: 2,
      col: 18,
      detail: 'Unterminated string literal (strings cannot span lines).',
    });
    assertError("name: 'abc", { line: 1, col: 7, detail: 'Unterminated string literal.' }, ModelConfig);
    assertError('name: "abc\\', { line: 1, col: 7, detail: 'Unterminated string literal.' }, ModelConfig);
    assertError('name: "abc\'', { line: 1, col: 7, detail: 'Unterminated string literal.' }, ModelConfig);
  });

  it('reports bad escapes at the backslash', () => {
    assertError(String.raw`name: "a\qb"`, {
      line: 1,
      col: 9,
      detail: String.raw`Invalid escape sequence "\q" in string literal.`,
    }, ModelConfig);
    assertError(String.raw`name: "a\xg"`, {
      line: 1,
      col: 9,
      detail: 'Expected hex digits for escape sequence.',
    }, ModelConfig);
    assertError(String.raw`name: "\777"`, {
      line: 1,
      col: 8,
      detail: String.raw`Octal escape "\777" is out of range.`,
    }, ModelConfig);
    assertError(String.raw`name: "\u12"`, {
      line: 1,
      col: 8,
      detail: String.raw`Invalid Unicode escape "\u12" in string literal.`,
    }, ModelConfig);
    assertError(String.raw`name: "\xff"`, {
      line: 1,
      col: 7,
      detail: 'String field "name" is not valid UTF-8',
      field: 'name',
    }, ModelConfig);
  });

  it('reports malformed numbers', () => {
    const versions = (literal: string) => `model_version_policy { specific { versions: ${literal} } }`;
    assertError(versions('08'), { line: 1, col: 45, detail: 'Numbers starting with leading zero must be in octal.' }, ModelConfig);
    assertError(versions('0x'), { line: 1, col: 45, detail: '"0x" must be followed by hex digits.' }, ModelConfig);
    assertError(versions('1e'), { line: 1, col: 45, detail: '"e" must be followed by exponent.' }, ModelConfig);
    assertError(versions('1.2.3'), { line: 1, col: 45, detail: 'Malformed number "1.2.".' }, ModelConfig);
    assertError(versions('12abc'), { line: 1, col: 45, detail: 'Malformed number "12a".' }, ModelConfig);
    assertError(versions('+1'), { line: 1, col: 45, detail: 'Expected integer, got "+"', field: 'versions' }, ModelConfig);
  });

  it('reports unexpected end of input', () => {
    assertError(lines('model_config_list {', '  config {', '    name: "a"'), {
      line: 3,
      col: 14,
      detail: 'Unexpected end of input: expected "}" to close "config" opened at 2:10',
      field: 'config',
    });
    assertError('model_config_list < config { } ', {
      line: 1,
      col: 32,
      detail: 'Unexpected end of input: expected ">" to close "model_config_list" opened at 1:19',
      field: 'model_config_list',
    });
    assertError('name:', { line: 1, col: 6, detail: 'Unexpected end of input: expected string', field: 'name' }, ModelConfig);
    assertError('name', { line: 1, col: 5, detail: 'Unexpected end of input: expected ":"', field: 'name' }, ModelConfig);
    assertError('model_version_policy', {
      line: 1,
      col: 21,
      detail: 'Unexpected end of input: expected "{" or "<"',
      field: 'model_version_policy',
    }, ModelConfig);
    assertError('model_version_policy { specific { versions: [1, 2', {
      line: 1,
      col: 50,
      detail: 'Unexpected end of input: expected "," or "]"',
      field: 'versions',
    }, ModelConfig);
  });

  it('reports unbalanced and mismatched delimiters', () => {
    assertError(lines('model_config_list {', '  config { name: "a" }', '}', '}'), {
      line: 4,
      col: 1,
      detail: 'Unbalanced "}": no open message to close',
    });
    assertError('model_config_list { config { name: "a" > }', {
      line: 1,
      col: 40,
      detail: 'Expected "}" to close "config" opened at 1:28, got ">"',
      field: 'config',
    });
    assertError('model_config_list < config { name: "a" } }', {
      line: 1,
      col: 42,
      detail: 'Expected ">" to close "model_config_list" opened at 1:19, got "}"',
      field: 'model_config_list',
    });
    assertError('model_version_policy { specific { versions: [1 2] } }', {
      line: 1,
      col: 48,
      detail: 'Expected "," or "]", got "2"',
      field: 'versions',
    }, ModelConfig);
    assertError('{ name: "a" }', { line: 1, col: 1, detail: 'Expected field name, got "{"' }, ModelConfig);
    assertError('name: "a" @', { line: 1, col: 11, detail: 'Expected field name, got "@"' }, ModelConfig);
  });

  it('rejects a non-repeated field given twice', () => {
    assertError(lines('model_config_list {', '  config {', '    name: "a"', '    name: "b"', '  }', '}'), {
      line: 4,
      col: 5,
      detail: 'Non-repeated field "name" is specified multiple times.',
      field: 'name',
    });
    assertError('model_version_policy { latest {} } model_version_policy { latest {} }', {
      line: 1,
      col: 36,
      detail: 'Non-repeated field "model_version_policy" is specified multiple times.',
      field: 'model_version_policy',
    }, ModelConfig);
    assertError('version_labels { key: "a" key: "b" }', {
      line: 1,
      col: 27,
      detail: 'Non-repeated field "key" is specified multiple times.',
      field: 'key',
    }, ModelConfig);
    assertError('model_config_list {} model_config_list {}', {
      line: 1,
      col: 22,
      detail: 'Non-repeated field "model_config_list" is specified multiple times.',
      field: 'model_config_list',
    });
  });

  it('rejects list syntax for a non-repeated field', () => {
    assertError('name: ["a"]', {
      line: 1,
      col: 7,
      detail: 'Field "name" is not repeated; list syntax "[...]" is only allowed for repeated fields',
      field: 'name',
    }, ModelConfig);
  });

  it('rejects unknown enum values', () => {
    assertError('model_type: TENSORFLOW_LITE', {
      line: 1,
      col: 13,
      detail: 'Unknown enumeration value of "TENSORFLOW_LITE" for field "model_type".',
      field: 'model_type',
    }, ModelConfig);
    assertError('model_type: 7', {
      line: 1,
      col: 13,
      detail: 'Unknown enumeration value of "7" for field "model_type".',
      field: 'model_type',
    }, ModelConfig);
    assertError('model_type: -1', {
      line: 1,
      col: 13,
      detail: 'Unknown enumeration value of "-1" for field "model_type".',
      field: 'model_type',
    }, ModelConfig);
  });

  it('rejects a second member of a oneof', () => {
    assertError(
      lines('model_config_list {', '  config {', '    model_version_policy { latest { num_versions: 2 } all {} }', '  }', '}'),
      {
        line: 3,
        col: 55,
        detail: 'Field "all" is specified along with field "latest", another member of oneof "policy_choice".',
        field: 'all',
      },
    );
    assertError('model_config_list {}\ncustom_model_config { type_url: "x" }', {
      line: 2,
      col: 1,
      detail: 'Field "custom_model_config" is specified along with field "model_config_list", another member of oneof "config".',
      field: 'custom_model_config',
    });
  });

  it('rejects Any expansion and extension syntax', () => {
    assertError('custom_model_config { [type.googleapis.com/tensorflow.serving.ModelConfigList] { } }', {
      line: 1,
      col: 23,
      detail: 'Extension and Any expansion syntax ("[...]") is not supported',
    });
  });
});
