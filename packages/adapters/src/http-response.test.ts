import { describe, expect, it } from 'vitest';
import {
  checkRangeRequest,
  checkRangeResponse,
  type RangeRequest,
  type RangeResponse,
  rangeHeader,
} from './http-response.js';

const request = (start: number, end?: number, ifMatch?: string): RangeRequest => ({
  key: 'm.bin',
  url: 'http://origin/m.bin',
  start,
  end,
  ifMatch,
});

const response = (
  statusCode: number,
  contentRange?: string,
  contentLength?: number,
  etag = '"e1"',
): RangeResponse => ({ statusCode, contentRange, contentLength, etag });

describe('checkRangeResponse', () => {
  it.each([
    ['a whole object', request(0), response(200, undefined, 1000), 1000],
    ['a whole object of unknown length', request(0), response(200), undefined],
    [
      'a 200 to a range that is the whole object',
      request(0, 1000),
      response(200, undefined, 1000),
      1000,
    ],
    ['a matching 206', request(10, 20), response(206, 'bytes 10-19/1000', 10), 10],
    ['a 206 to the rest of the object', request(990), response(206, 'bytes 990-999/1000', 10), 10],
    ['a 206 of unknown total', request(990), response(206, 'bytes 990-999/*'), 10],
    ['the pinned ETag', request(10, 20, '"e1"'), response(206, 'bytes 10-19/1000', 10), 10],
  ])('accepts %s, expecting the body length it announces', (_, req, res, length) => {
    expect(checkRangeResponse(req, res)).toBe(length);
  });

  const noRanges = /does not serve byte ranges/;
  const wrongRange = /shorter than the range asked for/;
  it.each([
    ['a 200 to part of the object', request(0, 10), response(200, undefined, 1000), noRanges],
    ['a 200 to a range of unknown fit', request(0, 1000), response(200), noRanges],
    ['a 206 without Content-Range', request(10, 20), response(206, undefined, 10), noRanges],
    [
      'a range cut short by the end',
      request(990, 1010),
      response(206, 'bytes 990-999/1000', 10),
      wrongRange,
    ],
    ['another first byte', request(10, 20), response(206, 'bytes 0-9/1000', 10), wrongRange],
    [
      'a Content-Length that disagrees',
      request(10, 20),
      response(206, 'bytes 10-19/1000', 11),
      wrongRange,
    ],
    ['a malformed Content-Range', request(10, 20), response(206, 'bytes 10-19', 10), wrongRange],
  ])('refuses %s as FERRY_RANGE_MISMATCH', (_, req, res, hint) => {
    expect(() => checkRangeResponse(req, res)).toThrow(
      expect.objectContaining({
        code: 'FERRY_RANGE_MISMATCH',
        statusCode: res.statusCode,
        key: 'm.bin',
        url: 'http://origin/m.bin',
        hint: expect.stringMatching(hint),
      }),
    );
  });

  it('refuses another ETag first: a replaced object explains a wrong range too', () => {
    const replaced = response(206, 'bytes 990-999/1000', 10, '"e2"');
    expect(() => checkRangeResponse(request(990, 1010, '"e1"'), replaced)).toThrow(
      expect.objectContaining({ code: 'FERRY_SOURCE_CHANGED', statusCode: 206 }),
    );
  });
});

describe('checkRangeRequest', () => {
  it('refuses a range no object has, as the caller’s bug', () => {
    for (const [start, end] of [
      [-1, 10],
      [10, 9],
    ] as const) {
      expect(() => checkRangeRequest(request(start, end))).toThrow(
        expect.objectContaining({
          code: 'FERRY_RANGE_MISMATCH',
          hint: expect.stringMatching(/bug in the caller/),
        }),
      );
    }
    expect(() => checkRangeRequest(request(10, 10))).not.toThrow();
    expect(() => checkRangeRequest(request(10))).not.toThrow();
  });
});

describe('rangeHeader', () => {
  it('asks for a range with an explicit first byte, and for a whole object with none', () => {
    expect(rangeHeader(0, undefined)).toBeUndefined();
    expect(rangeHeader(0, 10)).toBe('bytes=0-9');
    expect(rangeHeader(5, undefined)).toBe('bytes=5-');
  });
});
