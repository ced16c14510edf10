// Package secretscan finds registered secrets in artefacts: logs, database
// files, exported workflow histories, API objects. The tests use it to
// prove that no kubeconfig, client key, token, password or cloud-init
// payload the system handled ever reached a place an operator can read.
//
// A secret seldom shows up verbatim, so a [Set] looks for each one in
// every form in which a log or a history would carry it:
//
//   - as is;
//   - JSON-escaped, as a string inside a JSON log line or payload
//     (newlines and quotes become \n and \");
//   - base64 in the standard and the URL alphabet, at each of the three
//     alignments the secret can have inside longer encoded data (a []byte
//     field of a payload, a kubeconfig's client-key-data): only the
//     characters that carry the secret's bits alone are looked for, so
//     the match does not depend on what surrounds it;
//   - each long line on its own, plain and JSON-escaped, since a PEM body
//     line or a kubeconfig line leaks the secret as surely as the whole
//     (PEM armour lines, the same in every PEM, are left out).
//
// A kubeconfig registers its client keys, certificates, tokens and
// passwords as secrets of their own, because a component that parsed the
// kubeconfig would leak those rather than the file.
//
// [History] gives the text of a Temporal history to scan: its JSON as
// `temporal workflow show --output json` exports it, and the raw bytes of
// every bytes field, where the JSON has them base64-encoded.
//
// A [Finding] names the artefact, the secret (by the name it was
// registered under) and the form; it never holds the secret's value, so a
// report can be printed as it is.
package secretscan
