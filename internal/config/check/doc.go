// Package check is how machineflow's binaries judge their configuration:
// every rule that more than one binary applies (a listen address, a DNS
// name, a file that must exist, a positive duration) and the way they
// report the result.
//
// A binary collects every problem before it starts anything (Problems),
// each naming its setting as `SETTING="value": rule`, so that an operator
// fixes a configuration in one round rather than one variable per
// restart. ExitStatus prints them as one line, which is what shows up in
// a pod's last state, and tells -h (status 0) from an invalid setting
// (status 2).
package check
