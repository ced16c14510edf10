package childproc

import "sync"

// Tail keeps the last Max bytes written to it: the end of a child's
// output, for the error of a failed start, without holding all of a
// long-running server's output.
type Tail struct {
	mu  sync.Mutex
	Max int
	buf []byte
}

func (w *Tail) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if extra := len(w.buf) - w.Max; extra > 0 {
		w.buf = append(w.buf[:0], w.buf[extra:]...)
	}
	return len(p), nil
}

func (w *Tail) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.buf)
}
