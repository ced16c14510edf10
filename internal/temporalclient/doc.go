// Package temporalclient connects the worker, the starter and the
// controller to Temporal with one set of options, flags and environment
// variables (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_TLS_*,
// TEMPORAL_API_KEY), so that every binary is pointed at a server the same
// way.
//
// Dial uses client.DialContext under ConnectTimeout: a wrong address fails
// start-up within the bound with an error naming it, instead of the lazy
// client failing on first use. The API key goes to the SDK's credentials
// only; it is never part of an error, a log line or a flag's shown default.
package temporalclient
