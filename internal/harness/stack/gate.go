package stack

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"sync"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// heldRequestTimeout bounds the upstream call of a released request whose
// client may be gone (killed): it still goes through, as a request that
// had reached the API server would have.
const heldRequestTimeout = 30 * time.Second

// Gate is a proxy in front of a Kubernetes API server that holds the
// requests a test chooses until the test releases them. Pointing a
// worker's kubeconfig at a Gate lets a test stop the worker inside one
// chosen request of one chosen activity: kill the worker while the
// request is held, then release it, and the write lands on the API server
// after its caller is gone, exactly the moment an activity's retry must
// cope with.
//
// A Gate serves TLS on a loopback port that stays the same for its life,
// accepts only its own bearer token, and calls the upstream server with
// the upstream config's credentials. Requests that no Hold matches pass
// straight through, watches included.
type Gate struct {
	srv      *httptest.Server
	proxy    *httputil.ReverseProxy
	token    string
	upstream *url.URL

	mu     sync.Mutex
	holds  []*Hold
	closed chan struct{}
	once   sync.Once
}

// NewGate starts a Gate in front of the API server of upstream.
func NewGate(upstream *rest.Config) (*Gate, error) {
	target, err := url.Parse(upstream.Host)
	if err != nil {
		return nil, fmt.Errorf("gate: upstream host: %w", err)
	}
	transport, err := rest.TransportFor(upstream)
	if err != nil {
		return nil, fmt.Errorf("gate: upstream transport: %w", err)
	}
	token := make([]byte, 24)
	if _, err := rand.Read(token); err != nil {
		return nil, fmt.Errorf("gate: token: %w", err)
	}
	g := &Gate{token: hex.EncodeToString(token), upstream: target, closed: make(chan struct{})}
	g.proxy = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			// The gate's token is not the upstream's: the transport
			// authenticates as the upstream config's user.
			r.Out.Header.Del("Authorization")
		},
		Transport:     transport,
		FlushInterval: -1, // watches stream
		// A killed caller's requests fail upstream or on the way back;
		// that is the point, not news.
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) },
	}
	g.srv = httptest.NewUnstartedServer(http.HandlerFunc(g.serve))
	g.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	g.srv.EnableHTTP2 = true
	g.srv.StartTLS()
	return g, nil
}

// Kubeconfig is a kubeconfig that reaches the upstream server through the
// gate. Its token is the gate's: register it with a secret check.
func (g *Gate) Kubeconfig() ([]byte, error) {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["gate"] = &clientcmdapi.Cluster{
		Server:                   g.srv.URL,
		CertificateAuthorityData: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: g.srv.Certificate().Raw}),
	}
	kc.AuthInfos["gate"] = &clientcmdapi.AuthInfo{Token: g.token}
	kc.Contexts["gate"] = &clientcmdapi.Context{Cluster: "gate", AuthInfo: "gate"}
	kc.CurrentContext = "gate"
	out, err := clientcmd.Write(*kc)
	if err != nil {
		return nil, fmt.Errorf("gate: kubeconfig: %w", err)
	}
	return out, nil
}

// Close releases every held request, stops holding and stops serving.
func (g *Gate) Close() {
	g.once.Do(func() {
		close(g.closed)
		g.srv.CloseClientConnections()
		g.srv.Close()
	})
}

// Hold arms a hold: from now on, every request for which match returns
// true is held, and sent on the Hold's channel, until the test releases
// it or closes the Hold. The first armed Hold that matches a request gets
// it. match runs on the request before it is forwarded; it must not read
// the body.
func (g *Gate) Hold(match func(*http.Request) bool) *Hold {
	h := &Hold{gate: g, match: match, c: make(chan *HeldRequest, 1024), closed: make(chan struct{})}
	g.mu.Lock()
	g.holds = append(g.holds, h)
	g.mu.Unlock()
	return h
}

// Hold is one armed hold of a Gate.
type Hold struct {
	gate   *Gate
	match  func(*http.Request) bool
	c      chan *HeldRequest
	closed chan struct{}
	once   sync.Once
}

// C delivers the held requests, in the order they arrived.
func (h *Hold) C() <-chan *HeldRequest { return h.c }

// Close disarms the hold and releases every request it holds.
func (h *Hold) Close() {
	h.once.Do(func() {
		g := h.gate
		g.mu.Lock()
		g.holds = slices.DeleteFunc(g.holds, func(o *Hold) bool { return o == h })
		g.mu.Unlock()
		close(h.closed)
	})
}

// HeldRequest is a request waiting in a Gate.
type HeldRequest struct {
	// Method and Path are the request's; Query its raw query.
	Method, Path, Query string
	release             chan struct{}
	once                sync.Once
}

// Release lets the request go on to the upstream server; releasing it
// twice is a no-op.
func (r *HeldRequest) Release() { r.once.Do(func() { close(r.release) }) }

// Mutating reports whether the request writes: anything but a read or a
// watch.
func (r *HeldRequest) Mutating() bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

func (r *HeldRequest) String() string {
	if r.Query == "" {
		return r.Method + " " + r.Path
	}
	return r.Method + " " + r.Path + "?" + r.Query
}

func (g *Gate) serve(w http.ResponseWriter, r *http.Request) {
	want := "Bearer " + g.token
	if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte(want)) != 1 {
		http.Error(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Unauthorized","code":401}`, http.StatusUnauthorized)
		return
	}
	h := g.holding(r)
	if h == nil {
		g.proxy.ServeHTTP(w, r)
		return
	}
	// Read the body now: the caller may be killed while its request is
	// held, and the request is forwarded anyway.
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "gate: reading the request body: "+err.Error(), http.StatusBadGateway)
		return
	}
	held := &HeldRequest{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, release: make(chan struct{})}
	select {
	case h.c <- held:
	default:
		// A test that stopped reading: do not hold what it cannot see.
		held.Release()
	}
	select {
	case <-held.release:
	case <-h.closed:
	case <-g.closed:
		http.Error(w, "gate closed", http.StatusServiceUnavailable)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), heldRequestTimeout)
	defer cancel()
	out := r.Clone(ctx)
	out.Body = io.NopCloser(bytes.NewReader(body))
	out.ContentLength = int64(len(body))
	g.proxy.ServeHTTP(w, out)
}

func (g *Gate) holding(r *http.Request) *Hold {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, h := range g.holds {
		if h.match(r) {
			return h
		}
	}
	return nil
}
