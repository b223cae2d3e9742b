/** heapspec: hold native code to account for its heap from a JavaScript test run. */
export { runNative, HeapRun, backendFor, type TestCaseRun } from './run.js'
export { normalizeOptions, BACKENDS, type RunOptions, type BackendName } from './options.js'
export { HeapspecError, CannotStartError, CaptureFailedError, BadOptionError } from './errors.js'
export { formatReport } from './report/text.js'
export type * from './model/types.js'
export { describeNative, type DescribeNativeOptions, type TestFrameworkApi } from './describe-native.js'
export { runNode, type NodeRunOptions } from './run-node.js'
