package natsd_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/filecast/filecast/events/eventstest"
	"github.com/filecast/filecast/events/natsd"
	"github.com/filecast/filecast/events/natsd/natstest"
)

func TestOptions_Validate(t *testing.T) {
	tests := []struct {
		name string
		opts natsd.Options
		want error // nil, ErrNoStoreDir or ErrBadOptions
	}{
		{"embedded", natsd.Options{StoreDir: "x"}, nil},
		{"embedded replicas 1", natsd.Options{StoreDir: "x", Replicas: 1}, nil},
		{"nothing", natsd.Options{}, natsd.ErrNoStoreDir},
		{"embedded replicas 3", natsd.Options{StoreDir: "x", Replicas: 3}, natsd.ErrBadOptions},
		{"embedded negative replicas", natsd.Options{StoreDir: "x", Replicas: -1}, natsd.ErrBadOptions},
		{"embedded creds", natsd.Options{StoreDir: "x", CredsFile: "c"}, natsd.ErrBadOptions},
		{"embedded TLS", natsd.Options{StoreDir: "x", TLSCA: "ca.pem"}, natsd.ErrBadOptions},
		{"embedded token", natsd.Options{StoreDir: "x", Token: "s3cret"}, natsd.ErrBadOptions},
		{"external", natsd.Options{URL: "nats://a:4222"}, nil},
		{"several URLs", natsd.Options{URL: "nats://a:4222, tls://b:4222,c:4222", Replicas: 3}, nil},
		{"websocket", natsd.Options{URL: "wss://a:443"}, nil},
		{"empty URL in list", natsd.Options{URL: "nats://a:4222,,nats://b:4222"}, natsd.ErrBadOptions},
		{"bad scheme", natsd.Options{URL: "http://a:4222"}, natsd.ErrBadOptions},
		{"no host", natsd.Options{URL: "nats://"}, natsd.ErrBadOptions},
		{"replicas 5", natsd.Options{URL: "a:4222", Replicas: 5}, nil},
		{"replicas 2", natsd.Options{URL: "a:4222", Replicas: 2}, natsd.ErrBadOptions},
		{"replicas 7", natsd.Options{URL: "a:4222", Replicas: 7}, natsd.ErrBadOptions},
		{"negative replicas", natsd.Options{URL: "a:4222", Replicas: -3}, natsd.ErrBadOptions},
		{"creds", natsd.Options{URL: "a:4222", CredsFile: "u.creds"}, nil},
		{"user and password", natsd.Options{URL: "a:4222", User: "u", Password: "p"}, nil},
		{"password without user", natsd.Options{URL: "a:4222", Password: "p"}, natsd.ErrBadOptions},
		{"creds and token", natsd.Options{URL: "a:4222", CredsFile: "u.creds", Token: "t"}, natsd.ErrBadOptions},
		{"user and token", natsd.Options{URL: "a:4222", User: "u", Token: "t"}, natsd.ErrBadOptions},
		{"TLS", natsd.Options{URL: "a:4222", TLSCA: "ca", TLSCert: "c", TLSKey: "k"}, nil},
		{"cert without key", natsd.Options{URL: "a:4222", TLSCert: "c"}, natsd.ErrBadOptions},
		{"key without cert", natsd.Options{URL: "a:4222", TLSKey: "k"}, natsd.ErrBadOptions},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.Validate()
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Validate() = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestOptions_ValidateRedactsSecrets(t *testing.T) {
	for _, u := range []string{"http://user:hunter2@a:4222", "http://hunter2@a:4222", "nats://user:hunter2@a:4222,,"} {
		err := natsd.Options{URL: u}.Validate()
		if err == nil {
			t.Fatalf("Validate(%q) = nil, want an error", u)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error shows the secret: %v", err)
		}
	}
}

func FuzzOptions_Validate(f *testing.F) {
	for _, s := range []string{"nats://a:4222", "a:4222,b:4222", "tls://u:p@h:1", " , ", "nats://", "wss://[::1]:443", "%zz"} {
		f.Add(s, 3)
	}
	f.Fuzz(func(t *testing.T, url string, replicas int) {
		opts := natsd.Options{URL: url, Replicas: replicas}
		err := opts.Validate()
		if err != nil && !errors.Is(err, natsd.ErrBadOptions) && !errors.Is(err, natsd.ErrNoStoreDir) {
			t.Fatalf("Validate(%q) = %v, not a package sentinel", url, err)
		}
		if err == nil && url != "" && (replicas < 0 || replicas > natsd.MaxReplicas || replicas%2 == 0 && replicas != 0) {
			t.Fatalf("Validate accepted replicas %d", replicas)
		}
	})
}

func TestStart_Replicas(t *testing.T) {
	s := start(t, natsd.Options{StoreDir: t.TempDir()})
	if got := s.Replicas(); got != 1 {
		t.Errorf("embedded Replicas() = %d, want 1", got)
	}
	if _, err := natsd.Start(t.Context(), natsd.Options{StoreDir: t.TempDir(), Replicas: 3}); !errors.Is(err, natsd.ErrBadOptions) {
		t.Errorf("embedded with 3 replicas: err = %v, want ErrBadOptions", err)
	}
}

// TestStart_Cluster connects to a three-node cluster by its three URLs,
// stores into an R3 stream, and keeps working when the node it is
// connected to dies.
func TestStart_Cluster(t *testing.T) {
	c := natstest.Cluster(t, 3)
	s := start(t, natsd.Options{URL: c.URLs(), Replicas: 3})
	if got := s.Replicas(); got != 3 {
		t.Fatalf("Replicas() = %d, want 3", got)
	}
	roundTripR(t, s.Conn(), "CL", "one", 3)
	connected := -1
	for i := range c.N() {
		if c.URL(i) == s.Conn().ConnectedUrl() {
			connected = i
		}
	}
	if connected < 0 {
		t.Fatalf("connected to %s, not one of %s", s.Conn().ConnectedUrl(), c.URLs())
	}
	killed := time.Now()
	c.Kill(connected)
	// The stream may be electing a new leader: retry until it answers.
	eventstest.Within(t, 30*time.Second, fmt.Sprintf("a round trip after killing node %d", connected), func() bool {
		return tryRoundTrip(t.Context(), s.Conn(), "CL", "two", 3) == nil
	})
	t.Logf("killed node %d; served again after %v via %s", connected, time.Since(killed).Round(time.Millisecond), s.Conn().ConnectedUrl())
	if s.Conn().ConnectedUrl() == c.URL(connected) {
		t.Errorf("still connected to the killed node")
	}
}

// TestStart_UserPassword and the token and creds tests connect to servers
// that require authentication, with the right and the wrong secret.
func TestStart_UserPassword(t *testing.T) {
	ns := authServer(t, &server.Options{Username: "hub", Password: "s3cret"})
	start(t, natsd.Options{URL: ns.ClientURL(), User: "hub", Password: "s3cret"})
	_, err := natsd.Start(t.Context(), natsd.Options{URL: ns.ClientURL(), User: "hub", Password: "wrong"})
	if err == nil || !strings.Contains(err.Error(), "uthorization") {
		t.Fatalf("wrong password: err = %v, want an authorization error", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Errorf("error shows the password: %v", err)
	}
}

func TestStart_Token(t *testing.T) {
	ns := authServer(t, &server.Options{Authorization: "t0ken"})
	start(t, natsd.Options{URL: ns.ClientURL(), Token: "t0ken"})
	if _, err := natsd.Start(t.Context(), natsd.Options{URL: ns.ClientURL(), Token: "other"}); err == nil {
		t.Fatal("wrong token accepted")
	}
}

func TestStart_Creds(t *testing.T) {
	op, err := nkeys.CreateOperator()
	must(t, err)
	opPub, err := op.PublicKey()
	must(t, err)
	opClaims := jwt.NewOperatorClaims(opPub)
	sysJWT, sysPub := account(t, op, false)
	appJWT, appPub, appKey := accountWithKey(t, op, true)
	opClaims.SystemAccount = sysPub
	resolver := &server.MemAccResolver{}
	must(t, resolver.Store(sysPub, sysJWT))
	must(t, resolver.Store(appPub, appJWT))
	ns := authServer(t, &server.Options{
		TrustedOperators: []*jwt.OperatorClaims{opClaims},
		AccountResolver:  resolver,
		SystemAccount:    sysPub,
	})

	creds := func(signer nkeys.KeyPair) string {
		user, err := nkeys.CreateUser()
		must(t, err)
		userPub, err := user.PublicKey()
		must(t, err)
		uc := jwt.NewUserClaims(userPub)
		userJWT, err := uc.Encode(signer)
		must(t, err)
		seed, err := user.Seed()
		must(t, err)
		data, err := jwt.FormatUserConfig(userJWT, seed)
		must(t, err)
		path := filepath.Join(t.TempDir(), "user.creds")
		must(t, os.WriteFile(path, data, 0o600))
		return path
	}
	s := start(t, natsd.Options{URL: ns.ClientURL(), CredsFile: creds(appKey)})
	roundTrip(t, s.Conn(), "CREDS", "hello")

	stranger, err := nkeys.CreateAccount()
	must(t, err)
	_, err = natsd.Start(t.Context(), natsd.Options{URL: ns.ClientURL(), CredsFile: creds(stranger)})
	if err == nil || !strings.Contains(err.Error(), "uthorization") {
		t.Fatalf("creds signed by an unknown account: err = %v, want an authorization error", err)
	}
	if _, err := natsd.Start(t.Context(), natsd.Options{URL: ns.ClientURL(), CredsFile: filepath.Join(t.TempDir(), "missing.creds")}); err == nil {
		t.Fatal("missing creds file accepted")
	}
}

func account(t *testing.T, op nkeys.KeyPair, jetStream bool) (string, string) {
	t.Helper()
	j, pub, _ := accountWithKey(t, op, jetStream)
	return j, pub
}

func accountWithKey(t *testing.T, op nkeys.KeyPair, jetStream bool) (string, string, nkeys.KeyPair) {
	t.Helper()
	kp, err := nkeys.CreateAccount()
	must(t, err)
	pub, err := kp.PublicKey()
	must(t, err)
	ac := jwt.NewAccountClaims(pub)
	if jetStream {
		ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
	}
	token, err := ac.Encode(op)
	must(t, err)
	return token, pub, kp
}

// authServer runs a JetStream server on a random loopback port with the
// authentication or TLS settings of opts.
func authServer(t *testing.T, opts *server.Options) *server.Server {
	t.Helper()
	opts.Host, opts.Port, opts.NoSigs, opts.NoLog = "127.0.0.1", -1, true, true
	opts.JetStream, opts.StoreDir = true, t.TempDir()
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns
}

// TestStart_TLS connects over TLS to a server that verifies client
// certificates, all issued by a CA made up for the test.
func TestStart_TLS(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, dir, "ca")
	serverCert, serverKey := ca.issue(t, dir, "server", true)
	clientCert, clientKey := ca.issue(t, dir, "client", false)
	other := newCA(t, dir, "other")
	otherCert, otherKey := other.issue(t, dir, "otherclient", false)

	tlsConfig, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: serverCert, KeyFile: serverKey, CaFile: ca.certFile, Verify: true})
	must(t, err)
	ns := authServer(t, &server.Options{TLS: true, TLSVerify: true, TLSConfig: tlsConfig, TLSTimeout: 5})

	s := start(t, natsd.Options{URL: ns.ClientURL(), TLSCA: ca.certFile, TLSCert: clientCert, TLSKey: clientKey})
	if _, err := s.Conn().TLSConnectionState(); err != nil {
		t.Fatalf("connection is not TLS: %v", err)
	}
	roundTrip(t, s.Conn(), "TLS", "hello")

	tests := []struct {
		name string
		opts natsd.Options
	}{
		{"no client certificate", natsd.Options{TLSCA: ca.certFile}},
		{"client certificate of another CA", natsd.Options{TLSCA: ca.certFile, TLSCert: otherCert, TLSKey: otherKey}},
		{"server not trusted", natsd.Options{TLSCA: other.certFile, TLSCert: clientCert, TLSKey: clientKey}},
		{"system roots", natsd.Options{TLSCert: clientCert, TLSKey: clientKey}},
		{"missing CA file", natsd.Options{TLSCA: filepath.Join(dir, "missing.pem"), TLSCert: clientCert, TLSKey: clientKey}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
			defer cancel()
			tt.opts.URL = ns.ClientURL()
			s, err := natsd.Start(ctx, tt.opts)
			if err == nil {
				_ = s.Close()
				t.Fatal("connected, want a TLS failure")
			}
			t.Logf("refused: %v", err)
		})
	}
}

type testCA struct {
	cert     *x509.Certificate
	key      *ecdsa.PrivateKey
	certFile string
}

func newCA(t *testing.T, dir, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(t, err)
	cert, err := x509.ParseCertificate(der)
	must(t, err)
	file := filepath.Join(dir, name+".pem")
	writePEM(t, file, "CERTIFICATE", der)
	return &testCA{cert: cert, key: key, certFile: file}
}

// issue makes a certificate and key signed by the CA, for 127.0.0.1 when
// isServer, else for client authentication; it returns their files.
func (ca *testCA) issue(t *testing.T, dir, name string, isServer bool) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	must(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if isServer {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	must(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	must(t, err)
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", keyDER)
	return certFile, keyFile
}

func writePEM(t *testing.T, file, kind string, der []byte) {
	t.Helper()
	must(t, os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// roundTripR is roundTrip on a stream with the given replicas.
func roundTripR(t *testing.T, nc *nats.Conn, stream, payload string, replicas int) {
	t.Helper()
	if err := tryRoundTrip(t.Context(), nc, stream, payload, replicas); err != nil {
		t.Fatal(err)
	}
}

func tryRoundTrip(ctx context.Context, nc *nats.Conn, stream, payload string, replicas int) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	st, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{stream + ".>"}, Replicas: replicas})
	if err != nil {
		return fmt.Errorf("create stream: %w", err)
	}
	ack, err := js.Publish(ctx, stream+".x", []byte(payload))
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	msg, err := st.GetMsg(ctx, ack.Sequence)
	if err != nil {
		return fmt.Errorf("get message: %w", err)
	}
	if string(msg.Data) != payload {
		return fmt.Errorf("got %q, want %q", msg.Data, payload)
	}
	return nil
}
