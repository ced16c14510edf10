package activities

// Error types beyond the shared contract in types.go.
const (
	// ErrTypeWaiting is retryable: something the Machine references (a
	// cloud-init Secret or ConfigMap, a static IP allocation) does not exist
	// yet. The operator requeued in this case; the workflow's retry policy
	// bounds how long we wait.
	ErrTypeWaiting = "WaitingForDependency"
	// ErrTypeStorageClassMissing is final: the cluster has neither the
	// configured STORAGE_CLASS_NAME nor a default StorageClass.
	ErrTypeStorageClassMissing = "StorageClassNotFound"
)
