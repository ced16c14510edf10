// Package clients hands out controller-runtime clients for the KubeVirt
// clusters that KubevirtConfigs on the supervisor describe. Activities,
// the controller and the workers depend on the ClientManager interface;
// KubevirtClientManager is the real implementation, MockClientManager the
// one for unit tests. It replaces the vitistack kubevirt-operator's
// manager, whose gaps shaped most of what follows.
//
// # Cache
//
// One client per KubevirtConfig name, in a map behind a sync.RWMutex. The
// hot path is a read-locked lookup plus a clock read (no allocation, well
// under 100 ns: see BenchmarkGetClientForConfigCached). Everything slower
// runs in a single flight per name (golang.org/x/sync/singleflight):
// concurrent first calls build exactly one client, and no lock is held
// while the supervisor or a cluster is contacted. A flight runs on its own
// context bounded by twice the request timeout, so a caller that gives up
// does not fail the others waiting on the same flight. Building does no
// network I/O: the client discovers the cluster's API on first use.
//
// # Staleness bound
//
// A cached client is handed out without further checks for the
// revalidation interval (WithRevalidationInterval, 30 s by default). The
// first call after that reads the KubevirtConfig and its Secret again and
// compares a SHA-256 of the kubeconfig bytes with the one the client was
// built from: unchanged, the client stays for another interval; changed
// (a rotated Secret, or a config now pointing at another Secret), it is
// replaced; config or Secret gone or broken, it is dropped and the call
// fails with ErrConfigNotFound or ErrInvalidKubeconfig. So an edit takes
// effect at most one interval after it was made, without a restart and
// without watching anything. Status-only edits of a KubevirtConfig do not
// rebuild clients, because only the kubeconfig bytes count. When the
// supervisor cannot be read during revalidation the call fails (the
// stale client is kept for the next attempt) rather than serving a client
// older than the bound.
//
// Invalidations (InvalidateClient, InvalidateAll, a 401, a failed
// revalidation) bump a generation; a build that started before one does
// not put its result into the cache, so an invalidation is never undone
// by a slow build that read the old Secret.
//
// # Unauthorized answers
//
// Each client's transport is wrapped: a 401 from any request (typed or
// unstructured calls, discovery, status writes) drops that client from the
// cache, as cluster-api's ClusterCache does, because the usual reason is
// rotated credentials. The next call builds from the current Secret. The
// drop applies only if the entry is still the cached one, so a late 401
// of an old client cannot evict its successor.
//
// # Bounded calls
//
// Every REST config gets Timeout (10 s), QPS (20) and Burst (30), all
// configurable; every read from the supervisor and every cluster request
// made here also runs under a context deadline of the request timeout. A
// cluster that accepts connections and never answers therefore costs one
// timeout, not a blocked worker. HealthCheck and the placement search
// check all clusters at once, so their wall time is that of the slowest
// cluster, not the sum.
//
// The worker decorates the manager (Module): MetricsClientManager over
// ResilientClientManager, which retries transient failures and keeps a
// circuit breaker per config. ValidateConnection and HealthCheck pass
// through the resilient decorator untouched, so a probe of a dark cluster
// still costs one timeout and reports the cluster's own error, never
// "circuit open": their callers retry through Temporal instead.
//
// # Errors
//
// Every failure matches one sentinel with errors.Is, so callers decide
// retry or give up without parsing messages: ErrClusterUnreachable is
// worth retrying; ErrConfigNotFound, ErrInvalidKubeconfig,
// ErrUnauthorized, ErrKubeVirtAPIMissing and ErrAmbiguousPlacement need a
// person. Errors name the KubevirtConfig and Machine. They never contain
// Secret data: reasons are written here, and client-go's kubeconfig parse
// and validation errors, which can quote their input, are replaced rather
// than wrapped. Only API status and transport errors are wrapped; they
// carry server addresses, never credentials. Kubeconfigs with exec or
// auth-provider plugins are rejected, since running them would let anyone
// who can write the Secret run commands in the worker; so are those that
// name files (tokenFile, client-key, ...), which would send the worker's
// own files, such as its service account token, to the server the Secret
// names.
//
// # Secrets
//
// Secrets are read with a Get of the one Secret in its own namespace,
// through WithSecretReader or the supervisor client. That reader must be a
// direct one (manager.GetAPIReader()), never an informer-backed cache:
// the operator read Secrets through its manager's cache, which made it
// list and watch every Secret in the cluster, needing cluster-wide Secret
// RBAC and holding all of them in memory. Revalidation costs two GETs per
// config per interval instead.
//
// # Placement
//
// GetOrCreateClientFromMachine chooses, in order: the
// vitistack.io/kubevirt-config annotation, the default config
// (WithDefaultConfig, i.e. DEFAULT_KUBEVIRT_CONFIG), the only config, and
// finally the one cluster whose VM <machine.name> exists in the Machine's
// namespace, searched on all clusters at once. A cluster that cannot be
// searched is not taken as "absent": if the VM is found nowhere else the
// error (ErrClusterUnreachable) lists those clusters. The Machine is never
// written; the caller persists the returned name.
package clients
