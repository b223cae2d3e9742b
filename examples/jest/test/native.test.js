const path = require('node:path')
const { describeNative } = require('heapspec')

// One Jest test per native test case (test_empty, test_push_three, test_drop_list), each
// asserting that it leaked nothing, plus one for the program's exit and leaks outside them.
describeNative([path.join(__dirname, '..', 'build', 'list')])
