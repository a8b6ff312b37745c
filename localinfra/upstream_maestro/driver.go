// A command-line driver of upstream Maestro's own Go clients, unchanged: the REST API client
// (openapi) for consumers and the gRPC source work client (grpcsource) for ManifestWorks. The
// interop tests run it against a fleetplane server; every answer is printed as one JSON document.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/openshift-online/maestro/pkg/api/openapi"
	"github.com/openshift-online/maestro/pkg/client/cloudevents/grpcsource"
	"github.com/openshift-online/ocm-sdk-go/logging"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/klog/v2"
	workv1client "open-cluster-management.io/api/client/work/clientset/versioned/typed/work/v1"
	workv1 "open-cluster-management.io/api/work/v1"
	"open-cluster-management.io/sdk-go/pkg/cloudevents/generic/options/grpc"
)

var (
	restURL  = flag.String("rest", "", "base URL of the REST API, https://host:port")
	grpcAddr = flag.String("grpc", "", "host:port of the gRPC API")
	caFile   = flag.String("ca", "", "CA certificate the servers' certificates chain to")
	certFile = flag.String("cert", "", "client certificate")
	keyFile  = flag.String("key", "", "client key")
	source   = flag.String("source", "interop", "the source the work client publishes as")
	consumer = flag.String("consumer", "", "the consumer (cluster) of the works")
	timeout  = flag.Duration("timeout", 60*time.Second, "how long a command may take")
)

func main() {
	klog.SetLogger(logr.Discard())
	flag.Parse()
	args := flag.Args()
	if len(args) == 0 {
		fail(fmt.Errorf("usage: driver [flags] COMMAND [ARGS]"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	tlsConfig, err := clientTLS()
	if err != nil {
		fail(err)
	}
	api := restClient(tlsConfig)
	command, rest := args[0], args[1:]
	var out any
	if strings.HasPrefix(command, "consumer-") {
		out, err = consumerCommand(ctx, api, command, rest)
	} else {
		out, err = workCommand(ctx, api, tlsConfig, command, rest)
	}
	if err != nil {
		fail(err)
	}
	emit(out)
}

func clientTLS() (*tls.Config, error) {
	ca, err := os.ReadFile(*caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("%s holds no certificate", *caFile)
	}
	pair, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}

func restClient(tlsConfig *tls.Config) *openapi.APIClient {
	config := openapi.NewConfiguration()
	config.Servers = openapi.ServerConfigurations{{URL: *restURL}}
	config.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig}, Timeout: 30 * time.Second}
	return openapi.NewAPIClient(config)
}

func labels(pairs []string) map[string]string {
	out := map[string]string{}
	for _, pair := range pairs {
		key, value, _ := strings.Cut(pair, "=")
		out[key] = value
	}
	return out
}

func consumerCommand(ctx context.Context, api *openapi.APIClient, command string, args []string) (any, error) {
	calls := api.DefaultAPI
	switch command {
	case "consumer-create":
		want := openapi.Consumer{Name: openapi.PtrString(args[0])}
		if len(args) > 1 {
			set := labels(args[1:])
			want.Labels = &set
		}
		got, _, err := calls.ApiMaestroV1ConsumersPost(ctx).Consumer(want).Execute()
		return got, restError(err)
	case "consumer-get":
		got, _, err := calls.ApiMaestroV1ConsumersIdGet(ctx, args[0]).Execute()
		return got, restError(err)
	case "consumer-list":
		request := calls.ApiMaestroV1ConsumersGet(ctx)
		if len(args) > 0 {
			request = request.Search(args[0])
		}
		got, _, err := request.Execute()
		return got, restError(err)
	case "consumer-patch":
		set := labels(args[1:])
		got, _, err := calls.ApiMaestroV1ConsumersIdPatch(ctx, args[0]).
			ConsumerPatchRequest(openapi.ConsumerPatchRequest{Labels: &set}).Execute()
		return got, restError(err)
	case "consumer-delete":
		_, err := calls.ApiMaestroV1ConsumersIdDelete(ctx, args[0]).Execute()
		return map[string]string{"deleted": args[0]}, restError(err)
	case "bundle-list":
		request := calls.ApiMaestroV1ResourceBundlesGet(ctx)
		if len(args) > 0 {
			request = request.Search(args[0])
		}
		got, _, err := request.Execute()
		return got, restError(err)
	}
	return nil, fmt.Errorf("unknown command %s", command)
}

// restError adds the server's JSON error document to the client's error.
func restError(err error) error {
	if openapiErr, ok := err.(*openapi.GenericOpenAPIError); ok {
		return fmt.Errorf("%v: %s", err, openapiErr.Body())
	}
	return err
}

func workClient(ctx context.Context, api *openapi.APIClient, tlsConfig *tls.Config) (workv1client.ManifestWorkInterface, error) {
	logger, err := logging.NewStdLoggerBuilder().Info(false).Build()
	if err != nil {
		return nil, err
	}
	healthTimeout := 20 * time.Second
	options := &grpc.GRPCOptions{
		Dialer:                   &grpc.GRPCDialer{URL: *grpcAddr, TLSConfig: tlsConfig},
		ServerHealthinessTimeout: &healthTimeout,
	}
	client, err := grpcsource.NewMaestroGRPCSourceWorkClient(ctx, logger, api, options, *source)
	if err != nil {
		return nil, err
	}
	return client.ManifestWorks(*consumer), nil
}

func workCommand(ctx context.Context, api *openapi.APIClient, tlsConfig *tls.Config, command string, args []string) (any, error) {
	works, err := workClient(ctx, api, tlsConfig)
	if err != nil {
		return nil, err
	}
	switch command {
	case "work-apply":
		return apply(ctx, works, args[0])
	case "work-get":
		return works.Get(ctx, args[0], metav1.GetOptions{})
	case "work-list":
		options := metav1.ListOptions{}
		if len(args) > 0 {
			options.LabelSelector = args[0]
		}
		return works.List(ctx, options)
	case "work-delete":
		return map[string]string{"deleted": args[0]}, works.Delete(ctx, args[0], metav1.DeleteOptions{})
	case "work-watch":
		return watchUntil(ctx, works, args[0], args[1])
	}
	return nil, fmt.Errorf("unknown command %s", command)
}

// apply creates the work in FILE, or patches it as upstream's clients do when it exists.
func apply(ctx context.Context, works workv1client.ManifestWorkInterface, file string) (any, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	want := &workv1.ManifestWork{}
	if err := json.Unmarshal(data, want); err != nil {
		return nil, err
	}
	existing, err := works.Get(ctx, want.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return works.Create(ctx, want, metav1.CreateOptions{})
	}
	if err != nil {
		return nil, err
	}
	patch, err := grpcsource.ToWorkPatch(existing, want)
	if err != nil {
		return nil, err
	}
	return works.Patch(ctx, want.Name, types.MergePatchType, patch, metav1.PatchOptions{})
}

// watchUntil watches the consumer's works and answers the events seen for NAME once one of them
// is WANT: a condition type that is true, or "Deleted" for the work's removal.
func watchUntil(ctx context.Context, works workv1client.ManifestWorkInterface, name, want string) (any, error) {
	watcher, err := works.Watch(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	defer watcher.Stop()
	seen := []map[string]any{}
	for {
		select {
		case <-ctx.Done():
			return seen, fmt.Errorf("no %s event for %s within %s: saw %d events", want, name, *timeout, len(seen))
		case event, ok := <-watcher.ResultChan():
			if !ok {
				return seen, fmt.Errorf("the watch ended before %s was %s", name, want)
			}
			work, isWork := event.Object.(*workv1.ManifestWork)
			if !isWork || work.Name != name {
				continue
			}
			seen = append(seen, map[string]any{"type": event.Type, "conditions": work.Status.Conditions})
			if want == "Deleted" && event.Type == watch.Deleted {
				return seen, nil
			}
			for _, condition := range work.Status.Conditions {
				if condition.Type == want && condition.Status == metav1.ConditionTrue {
					return seen, nil
				}
			}
		}
	}
}

func emit(value any) {
	data, err := json.Marshal(value)
	if err != nil {
		fail(err)
	}
	fmt.Println(string(data))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "error:", err)
	os.Exit(1)
}
