package worker

// GrowStack is growStack, for the tests of package worker_test.
var GrowStack = growStack
