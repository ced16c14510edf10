package runner

import (
	"bytes"
	"fmt"
	"io"
	"sync"
)

// prefixWidth aligns the "name | " prefixes of the processes.
const prefixWidth = 10

// output serialises whole lines from every process onto one writer, so
// lines of concurrent processes never interleave mid-line.
type output struct {
	mu sync.Mutex
	w  io.Writer
}

// prefixed returns a writer that emits each complete line as "name | line".
func (o *output) prefixed(name string) *lineWriter {
	return &lineWriter{o: o, prefix: []byte(fmt.Sprintf("%-*s | ", prefixWidth, name))}
}

// lineWriter buffers a partial line until its newline arrives.
type lineWriter struct {
	o      *output
	prefix []byte
	mu     sync.Mutex
	buf    []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	var lines []byte
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		lines = append(lines, l.prefix...)
		lines = append(lines, l.buf[:i+1]...)
		l.buf = l.buf[i+1:]
	}
	if len(lines) > 0 {
		if err := l.o.write(lines); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// Flush writes a last line that has no newline.
func (l *lineWriter) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) == 0 {
		return
	}
	line := append(append(append([]byte{}, l.prefix...), l.buf...), '\n')
	l.buf = nil
	_ = l.o.write(line)
}

func (o *output) write(b []byte) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, err := o.w.Write(b)
	return err
}
