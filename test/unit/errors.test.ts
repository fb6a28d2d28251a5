/**
 * The one catalogue of errors (common/errors.ts): TF codes to HTTP statuses as TF Serving's
 * ToHTTPStatusCode maps them, and every thrown value as a ServingError.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Code, codeName, httpStatus, ServingError, toServingError } from '../../common/errors.js';

test('each TF code maps to TF Serving\'s HTTP status', () => {
  const table: Array<[keyof typeof Code, number]> = [
    ['OK', 200],
    ['CANCELLED', 499],
    ['UNKNOWN', 500],
    ['INVALID_ARGUMENT', 400],
    ['DEADLINE_EXCEEDED', 504],
    ['NOT_FOUND', 404],
    ['ALREADY_EXISTS', 409],
    ['PERMISSION_DENIED', 403],
    ['RESOURCE_EXHAUSTED', 429],
    ['FAILED_PRECONDITION', 400],
    ['ABORTED', 409],
    ['OUT_OF_RANGE', 400],
    ['UNIMPLEMENTED', 501],
    ['INTERNAL', 500],
    ['UNAVAILABLE', 503],
    ['DATA_LOSS', 500],
    ['UNAUTHENTICATED', 401],
  ];
  assert.equal(table.length, Object.keys(Code).length, 'every code is in the table');
  for (const [name, status] of table) {
    assert.equal(httpStatus(Code[name]), status, name);
    assert.equal(codeName(Code[name]), name);
  }
  assert.equal(httpStatus(99), 500, 'an unknown code is a server error');
});

test('toServingError keeps ServingErrors and makes anything else INTERNAL with its message', () => {
  const own = new ServingError(Code.NOT_FOUND, 'gone');
  assert.equal(toServingError(own), own);
  const cases: Array<[unknown, string]> = [
    [new Error('boom'), 'boom'],
    [new TypeError('bad type'), 'bad type'],
    ['a string', 'a string'],
    [42, '42'],
    [undefined, 'undefined'],
  ];
  for (const [thrown, message] of cases) {
    const e = toServingError(thrown);
    assert.ok(e instanceof ServingError);
    assert.deepEqual([e.code, e.message], [Code.INTERNAL, message]);
  }
});
