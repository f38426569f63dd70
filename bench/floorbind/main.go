// A bind-only kube-scheduler extender written the way the Go peers bind: decode the
// ExtenderBindingArgs, POST the pods/binding subresource, answer with ExtenderBindingResult.
// No reservation, no state, no watch: the least any extender with a bindVerb does. It runs
// beside go-extender-floor (filter/prioritize) as a second extender, so the bench's
// floor-bind set-up differs from floor by the bind verb alone. Standard library only.
//
// Usage: floorbind PORT APISERVER_URL TOKEN_FILE CA_FILE
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

type bindingArgs struct {
	PodName      string
	PodNamespace string
	PodUID       string
	Node         string
}

type bindingResult struct {
	Error string
}

type objectMeta struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	UID       string `json:"uid"`
}

type objectReference struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Name       string `json:"name"`
}

type binding struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Metadata   objectMeta      `json:"metadata"`
	Target     objectReference `json:"target"`
}

type binder struct {
	client *http.Client
	server string
	token  string
}

func (b *binder) bind(w http.ResponseWriter, r *http.Request) {
	var args bindingArgs
	if err := json.NewDecoder(r.Body).Decode(&args); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	body, _ := json.Marshal(binding{
		APIVersion: "v1", Kind: "Binding",
		Metadata: objectMeta{Name: args.PodName, Namespace: args.PodNamespace, UID: args.PodUID},
		Target:   objectReference{APIVersion: "v1", Kind: "Node", Name: args.Node},
	})
	target := fmt.Sprintf("%s/api/v1/namespaces/%s/pods/%s/binding",
		b.server, url.PathEscape(args.PodNamespace), url.PathEscape(args.PodName))
	req, err := http.NewRequest(http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+b.token)
	result := bindingResult{}
	resp, err := b.client.Do(req)
	if err != nil {
		result.Error = err.Error()
	} else {
		reply, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			result.Error = fmt.Sprintf("binding: %d %s", resp.StatusCode, reply)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(&result)
}

func main() {
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: floorbind PORT APISERVER_URL TOKEN_FILE CA_FILE")
		os.Exit(2)
	}
	token, err := os.ReadFile(os.Args[3])
	if err != nil {
		panic(err)
	}
	ca, err := os.ReadFile(os.Args[4])
	if err != nil {
		panic(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	transport := &http.Transport{ // as client-go's: HTTP/2 over TLS, connections kept
		TLSClientConfig:     &tls.Config{RootCAs: pool},
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 25,
		IdleConnTimeout:     90 * time.Second,
	}
	b := &binder{
		client: &http.Client{Transport: transport, Timeout: 30 * time.Second},
		server: strings.TrimRight(os.Args[2], "/"),
		token:  strings.TrimSpace(string(token)),
	}
	http.HandleFunc("/bind", b.bind)
	if err := http.ListenAndServe("127.0.0.1:"+os.Args[1], nil); err != nil {
		panic(err)
	}
}
