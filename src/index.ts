/** heapspec: hold native code to account for its heap from a JavaScript test run. */
export { runNative, HeapRun, backendFor, chooseBackend, type TestCaseRun } from './run.js'
export { observeRuns, type RunObserver, type CaptureStart } from './run-events.js'
export { normalizeOptions, BACKENDS, type RunOptions, type BackendName, type CaptureBackendName } from './options.js'
export { HeapspecError, CannotStartError, CaptureFailedError, BadOptionError } from './errors.js'
export { formatReport } from './report/text.js'
export type * from './model/types.js'
export { describeNative, type DescribeNativeOptions, type TestFrameworkApi } from './describe-native.js'
export { runNode, type NodeRunOptions } from './run-node.js'
