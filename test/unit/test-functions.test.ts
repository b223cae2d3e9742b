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
    // a function template's demangled name starts with its return type; gdb names it without
    expect(functionName('void test_t<int>()')).toBe('test_t<int>')
    expect(functionName('std::vector<int, std::allocator<int> > ns::make_test<long>(int)')).toBe('ns::make_test<long>')
    expect(functionName('(anonymous namespace)::test_hidden()')).toBe('(anonymous namespace)::test_hidden')
    expect(functionName('Fixture::operator new(unsigned long)')).toBe('Fixture::operator new')
  })

  it("matches the user's RegExp, flags included, and refuses a pattern that matches nothing", async () => {
    expect(await testFunctionNames(program('tests-nomarkers'), /^TEST_(clean|keeps)$/i)).toEqual(['test_clean', 'test_keeps'])
    expect(await testFunctionNames(program('gtest-plain'), /^Heap_.*::TestBody$/)).toEqual(['Heap_Clean_Test::TestBody', 'Heap_LeaksNew_Test::TestBody', 'Heap_VectorFreed_Test::TestBody'])
    await expect(testFunctionNames(program('tests-nomarkers'), /^nope/, 'tests-nomarkers')).rejects.toThrow(BadOptionError)
  })
})
