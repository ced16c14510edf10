package secretscan

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"k8s.io/client-go/tools/clientcmd"
)

const (
	// MinLen is the shortest secret Add accepts: anything shorter turns
	// up in ordinary text by chance.
	MinLen = 8
	// minLineLen is the shortest line, or base64 form, of a secret that
	// counts as that secret when found alone.
	minLineLen = 16
	// probeLen is the length of the prefix a scan indexes forms by; no
	// form is shorter.
	probeLen = MinLen
)

// Set is a set of secrets to look for. The zero value is empty and ready;
// a Set is safe for concurrent use.
type Set struct {
	mu    sync.Mutex
	names []string
	// index holds every form by its first probeLen bytes, so that a scan
	// is one pass over the data however many secrets there are.
	index map[string][]form
	forms int
}

// form is one way a secret would show up.
type form struct {
	secret int // index into Set.names
	name   string
	b      []byte
}

// Add registers a secret under the name what, which findings report; the
// value itself is never reported. A kubeconfig's client keys,
// certificates, tokens and passwords are registered too, each under what
// followed by the user and the part. Add returns the names it registered.
//
// It panics on a value shorter than MinLen, a programming error: a scan
// could not tell such a secret from ordinary text, so the caller must use
// longer ones.
func (s *Set) Add(what string, value []byte) []string {
	if len(value) < MinLen {
		panic(fmt.Sprintf("secretscan: secret %q has %d bytes; at least %d are needed to tell it from ordinary text", what, len(value), MinLen))
	}
	s.mu.Lock()
	if s.index == nil {
		s.index = map[string][]form{}
	}
	id := len(s.names)
	s.names = append(s.names, what)
	for _, f := range formsOf(value) {
		f.secret = id
		key := string(f.b[:probeLen])
		if !slices.ContainsFunc(s.index[key], func(o form) bool { return o.secret == id && bytes.Equal(o.b, f.b) }) {
			s.index[key] = append(s.index[key], f)
			s.forms++
		}
	}
	s.mu.Unlock()
	added := []string{what}
	for part, v := range kubeconfigCredentials(value) {
		added = append(added, s.Add(what+": "+part, v)...)
	}
	return added
}

// Len is the number of secrets and of forms looked for, so that a caller
// can tell a scan that looked for nothing.
func (s *Set) Len() (secrets, forms int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.names), s.forms
}

// Finding is one secret found in one artefact. It never holds the secret.
type Finding struct {
	Artefact string // what was scanned, as the caller named it
	Secret   string // the name the secret was registered under
	Form     string // how it was found: "as is", "base64 at offset 1", ...
}

func (f Finding) String() string { return fmt.Sprintf("%s: %s (%s)", f.Artefact, f.Secret, f.Form) }

// Scan reports every registered secret found in data, once per secret,
// in the order they first occur.
func (s *Set) Scan(artefact string, data []byte) []Finding {
	s.mu.Lock()
	defer s.mu.Unlock()
	var found []Finding
	seen := map[int]bool{}
	for i := 0; i+probeLen <= len(data); i++ {
		for _, f := range s.index[string(data[i:i+probeLen])] {
			if !seen[f.secret] && bytes.HasPrefix(data[i:], f.b) {
				seen[f.secret] = true
				found = append(found, Finding{Artefact: artefact, Secret: s.names[f.secret], Form: f.name})
			}
		}
	}
	return found
}

// ScanHistory is Scan of the text History gives for h.
func (s *Set) ScanHistory(artefact string, h *historypb.History) ([]Finding, error) {
	data, err := History(h)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", artefact, err)
	}
	return s.Scan(artefact, data), nil
}

// History is the text to scan for a workflow history: the history as
// `temporal workflow show --output json` exports it, and the raw bytes of
// every bytes field in it (payloads above all), which the JSON carries
// base64-encoded. The parts are joined by NUL bytes into one text, so
// that a secret is reported once per history.
func History(h *historypb.History) ([]byte, error) {
	data, err := temporalproto.CustomJSONMarshalOptions{}.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("encoding the history as JSON: %w", err)
	}
	parts := [][]byte{data}
	var walk func(protoreflect.Message)
	visit := func(fd protoreflect.FieldDescriptor, v protoreflect.Value) {
		switch {
		case fd.Message() != nil:
			walk(v.Message())
		case fd.Kind() == protoreflect.BytesKind:
			parts = append(parts, v.Bytes())
		}
	}
	walk = func(m protoreflect.Message) {
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			switch {
			case fd.IsList():
				for i := range v.List().Len() {
					visit(fd, v.List().Get(i))
				}
			case fd.IsMap():
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					visit(fd.MapValue(), mv)
					return true
				})
			default:
				visit(fd, v)
			}
			return true
		})
	}
	walk(h.ProtoReflect())
	return bytes.Join(parts, []byte{0}), nil
}

// formsOf lists the forms of a secret (see the package documentation).
func formsOf(v []byte) []form {
	out := []form{{name: "as is", b: v}}
	if esc := jsonEscaped(v); !bytes.Equal(esc, v) {
		out = append(out, form{name: "JSON-escaped", b: esc})
	}
	for _, enc := range []struct {
		name string
		*base64.Encoding
	}{{"base64", base64.StdEncoding}, {"base64url", base64.URLEncoding}} {
		for shift := range 3 {
			if core := base64Core(enc.Encoding, v, shift); len(core) >= minLineLen {
				out = append(out, form{name: fmt.Sprintf("%s at offset %d", enc.name, shift), b: core})
			}
		}
	}
	if bytes.ContainsRune(v, '\n') {
		for i, line := range bytes.Split(v, []byte("\n")) {
			line = bytes.TrimSpace(line)
			// PEM armour lines are the same in every PEM.
			if len(line) < minLineLen || bytes.HasPrefix(line, []byte("-----")) {
				continue
			}
			name := fmt.Sprintf("line %d", i+1)
			out = append(out, form{name: name, b: line})
			if esc := jsonEscaped(line); !bytes.Equal(esc, line) {
				out = append(out, form{name: name + ", JSON-escaped", b: esc})
			}
		}
	}
	return out
}

func jsonEscaped(v []byte) []byte {
	b, _ := json.Marshal(string(v)) // a string always encodes
	return b[1 : len(b)-1]
}

// base64Core is the part of the base64 encoding of v that is the same
// wherever v starts inside longer data, given that it starts shift bytes
// after a 3-byte boundary: the characters that carry only v's bits.
func base64Core(enc *base64.Encoding, v []byte, shift int) []byte {
	padded := append(make([]byte, shift), v...)
	full := enc.EncodeToString(padded)
	start := (shift*8 + 5) / 6
	end := len(padded) * 8 / 6
	if end <= start {
		return nil
	}
	return []byte(full[start:end])
}

// kubeconfigCredentials returns the credentials of a kubeconfig by name,
// or nothing when value is not a kubeconfig with credentials.
func kubeconfigCredentials(value []byte) map[string][]byte {
	cfg, err := clientcmd.Load(value)
	if err != nil {
		return nil
	}
	out := map[string][]byte{}
	for name, auth := range cfg.AuthInfos {
		for part, v := range map[string][]byte{
			"client key":         auth.ClientKeyData,
			"client certificate": auth.ClientCertificateData,
			"token":              []byte(auth.Token),
			"password":           []byte(auth.Password),
		} {
			if len(v) >= MinLen {
				out[fmt.Sprintf("user %s %s", name, part)] = v
			}
		}
	}
	return out
}
