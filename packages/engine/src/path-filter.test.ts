import { describe, expect, it } from 'vitest';
import { compileFilter } from './path-filter.js';

describe('compileFilter', () => {
  it.each([
    [{ include: ['*.safetensors'] }, 'model-00001.safetensors', true],
    [{ include: ['*.safetensors'] }, 'sub/model.safetensors', true],
    [{ include: ['*.safetensors'] }, 'model.bin', false],
    [{ include: ['*.json', '*.safetensors'] }, 'tokenizer/tokenizer.json', true],
    [{ exclude: ['*.bin', '*.gguf'] }, 'pytorch_model.bin', false],
    [{ exclude: ['*.bin'] }, 'config.json', true],
    [{ include: ['onnx/**'] }, 'onnx/a/b.onnx', true],
    [{ include: ['onnx/**'] }, 'other/onnx/b.onnx', false],
    [{ include: ['**/tokenizer.json'] }, 'tokenizer.json', true],
    [{ include: ['tokenizer/*.json'] }, 'tokenizer/a/b.json', false],
    [{ include: ['model-0000?.safetensors'] }, 'model-00003.safetensors', true],
    [{ include: ['*.safetensors'], exclude: ['*-00002.*'] }, 'model-00002.safetensors', false],
    [{ only: ['a/config.json'] }, 'a/config.json', true],
    [{ only: ['a/config.json'] }, 'config.json', false],
    [{ only: ['x[1].bin'] }, 'x[1].bin', true],
    [{ only: ['a.bin'], include: ['*.json'] }, 'b.json', true],
    [{ only: ['a.bin'], exclude: ['*.bin'] }, 'a.bin', false],
    [{}, 'anything', true],
  ])('%j selects %s: %s', (filter, path, want) => {
    expect(compileFilter(filter)(path)).toBe(want);
  });
});
