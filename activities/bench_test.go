package activities

// The pure functions run on every provisioning step and every wait poll;
// these benchmarks report their cost (make bench).
