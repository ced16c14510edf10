// Package decide holds the Machine controller's decisions as pure
// functions: what a reconcile does with a Machine (Machine), what an Ensure
// call does with the latest run of a workflow (Run), and when to look again
// (Requeue). The reconciler and the Temporal trigger observe, call these,
// and carry out the answer.
//
// Keeping the decisions apart from the API calls around them lets a table
// test walk every branch with plain values, and keeps the executors
// simple enough to read at a glance, the way temporal-worker-controller
// separates its planner from its executor.
package decide
