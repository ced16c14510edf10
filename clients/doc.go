// Package clients hands out controller-runtime clients for the KubeVirt
// clusters that KubevirtConfigs on the supervisor describe. Activities,
// the controller and the workers depend on the ClientManager interface;
// KubevirtClientManager is the real implementation, MockClientManager the
// one for unit tests, and Module wires the real one, decorated with
// retries, a circuit breaker per config and metrics, into fx.
//
// The design follows cluster-api's ClusterCache: one cached client per
// KubevirtConfig, built once per name in a single flight (no lock is held
// while a cluster or the supervisor is contacted), and dropped when it can
// no longer be trusted, so callers never manage connections themselves.
//
//   - Staleness is bounded without watching anything: after the
//     revalidation interval the next call reads the KubevirtConfig and its
//     Secret again and compares a hash of the kubeconfig bytes with the one
//     the client was built from, so a rotated Secret takes effect within
//     one interval and status edits rebuild nothing. A supervisor that
//     cannot be read then fails the call rather than serve a client older
//     than the bound. Invalidations bump a generation, so a slow build that
//     read the old Secret never undoes one.
//   - A 401 from any request drops that client (the usual cause is rotated
//     credentials); the next call builds from the current Secret.
//   - Every call is bounded: each REST config has a timeout, QPS and burst,
//     and every request made here runs under the request timeout, so a
//     cluster that never answers costs one timeout, not a blocked worker.
//     HealthCheck and the placement search ask all clusters at once.
//   - Every failure matches one sentinel with errors.Is, so callers decide
//     retry or give up without parsing messages. Errors name the
//     KubevirtConfig and Machine and never contain Secret data: client-go's
//     kubeconfig errors, which can quote their input, are replaced rather
//     than wrapped. Kubeconfigs with exec or auth-provider plugins, or that
//     name files, are refused: they would let whoever writes the Secret run
//     commands in the worker or read its files.
//   - Secrets are read with a Get of the one Secret through a direct reader,
//     never an informer cache, which would list and watch every Secret in
//     the cluster, as the vitistack kubevirt-operator's manager did.
//
// GetOrCreateClientFromMachine chooses, in order: the
// vitistack.io/kubevirt-config annotation, the default config, the only
// config, and the one cluster where the Machine's VM exists. A cluster
// that cannot be searched is never taken as "absent". The Machine is never
// written; the caller persists the returned name.
package clients
