// Package cli is the starter command (cmd/starter): a kubectl-style CLI
// that starts, follows and inspects machineflow's workflows. cmd/starter
// only calls Main, so every command runs in-process in tests.
//
// Why it is shaped this way:
//
//   - Exit codes are a contract with scripts (exit.go): 1 for a workflow
//     that did not complete, 2 for usage, 3 for not found, 4 for an
//     unreachable Temporal, 5 for a --timeout. An error from before a
//     command's own code ran (cobra's flag and argument parsing) is a usage
//     error; every error is printed as one line, with a usage hint only
//     for usage errors, never a stack trace or a usage dump.
//   - Arguments and flags are validated before dialing, with the workflows'
//     own input validation, so a typo fails at once and not in history.
//   - Workflows are started only through workflows.Starter, so the IDs,
//     search attributes and reuse policies are the controller's too. A
//     workflow that is already open is reported as such (a describe before
//     the start) instead of being passed off as new.
//   - --wait follows a run by polling its "status" query rather than
//     reading history: the output shows the workflow's own step names,
//     attempts and last error. Steps shorter than the poll
//     interval are not seen; the result and failure chain always are.
//   - Results go to stdout and notes and progress under -o json to stderr,
//     so `-o json` output is one document a script can parse.
//   - Connection flags and variables come from internal/temporalclient, the
//     same as the worker's and the controller's.
package cli
