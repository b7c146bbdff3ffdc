// Runs dynalite's command line (its path in DYNALITE_CLI, its flags as ours) so that a request
// its client aborted does not end the server. dynalite throws from a request's 'error' event,
// and the tests SIGKILL processes mid-request on purpose; any other uncaught error still ends it.
process.on('uncaughtException', (err) => {
  if (err && (err.code === 'ECONNRESET' || err.message === 'aborted')) {
    console.error('dynalite: a client aborted its request: ' + err.message)
    return
  }
  console.error(err)
  process.exit(1)
})
require(process.env.DYNALITE_CLI)
