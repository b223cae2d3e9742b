import { describe, expect, it } from 'vitest'
import { functionName, testFunctionNames } from '../../src/capture/test-functions.js'
import { BadOptionError } from '../../src/errors.js'
import { program } from '../support/debugee.js'

describe('test functions from the program’s own symbols', () => {
  it('names a function as gdb lists it: demangled, without its parameters or qualifiers', () => {
    expect(functionName('test_clean')).toBe('test_clean')
    expect(functionName('Heap_Clean_Test::TestBody()')).toBe('Heap_Clean_Test::TestBody')
    expect(functionName('ns::Widget::size() const')).toBe('ns::Widget::size')
    expect(functionName('run(void (*)(int), std::vector<int, std::allocator<int> > const&)')).toBe('run')
  })

  it("matches the user's RegExp, flags included, and refuses a pattern that matches nothing", async () => {
    expect(await testFunctionNames(program('tests-nomarkers'), /^TEST_(clean|keeps)$/i)).toEqual(['test_clean', 'test_keeps'])
    expect(await testFunctionNames(program('gtest-plain'), /^Heap_.*::TestBody$/)).toEqual(['Heap_Clean_Test::TestBody', 'Heap_LeaksNew_Test::TestBody', 'Heap_VectorFreed_Test::TestBody'])
    await expect(testFunctionNames(program('tests-nomarkers'), /^nope/, 'tests-nomarkers')).rejects.toThrow(BadOptionError)
  })
})
