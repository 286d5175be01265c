package webhook_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"

	"github.com/filecast/filecast/events/webhook"
)

// A receiver checks each delivery's signature before trusting its body.
func ExampleVerify() {
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" // from POST /v1/webhooks
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := webhook.Verify([]string{secret}, r.Header, body, 5*time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		fmt.Println("verified", r.Header.Get("webhook-id"))
	})

	// What filecast sends:
	body := `{"event_id":"01JDX5ZQ8J4M7Y2N3P6R9S0T1V","type":"file.updated"}`
	now := time.Now()
	sig, _ := webhook.Sign(secret, "01JDX5ZQ8J4M7Y2N3P6R9S0T1V", now, []byte(body))
	req := httptest.NewRequest(http.MethodPost, "/hook", strings.NewReader(body))
	req.Header.Set("webhook-id", "01JDX5ZQ8J4M7Y2N3P6R9S0T1V")
	req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	handler.ServeHTTP(httptest.NewRecorder(), req)
	// Output: verified 01JDX5ZQ8J4M7Y2N3P6R9S0T1V
}

func ExampleParseSchedule() {
	s, err := webhook.ParseSchedule("100ms, 5s, 1m")
	fmt.Println(s, err)
	// Output: [100ms 5s 1m0s] <nil>
}
