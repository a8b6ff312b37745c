// A command-line driver of upstream Maestro's own Go clients, unchanged: the REST API client
// (openapi) for consumers, the gRPC source work client (grpcsource) for ManifestWorks, and the
// sdk-go source client as upstream's performance tool drives it (creates only, no REST lookups).
// The interop tests and the publish benchmark run it against a server; every answer is printed as
// one JSON document. Without --ca it speaks plaintext (upstream's server by default).
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
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/openshift-online/maestro/pkg/api/openapi"
	"github.com/openshift-online/maestro/pkg/client/cloudevents/grpcsource"
	"github.com/openshift-online/ocm-sdk-go/logging"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/klog/v2"
	workv1client "open-cluster-management.io/api/client/work/clientset/versioned/typed/work/v1"
	workv1 "open-cluster-management.io/api/work/v1"
	"open-cluster-management.io/sdk-go/pkg/cloudevents/clients/statushash"
	"open-cluster-management.io/sdk-go/pkg/cloudevents/clients/store"
	"open-cluster-management.io/sdk-go/pkg/cloudevents/clients/work/payload"
	sourceclient "open-cluster-management.io/sdk-go/pkg/cloudevents/clients/work/source/client"
	"open-cluster-management.io/sdk-go/pkg/cloudevents/clients/work/source/codec"
	ceclients "open-cluster-management.io/sdk-go/pkg/cloudevents/generic/clients"
	"open-cluster-management.io/sdk-go/pkg/cloudevents/generic/options/grpc"
	"open-cluster-management.io/sdk-go/pkg/cloudevents/generic/utils"
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
	qps      = flag.Int("qps", 100000, "events/s each bench-create client may send")
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
	} else if command == "bench-create" {
		out, err = benchCreate(ctx, tlsConfig, rest)
	} else {
		out, err = workCommand(ctx, api, tlsConfig, command, rest)
	}
	if err != nil {
		fail(err)
	}
	emit(out)
}

func clientTLS() (*tls.Config, error) {
	if *caFile == "" {
		return nil, nil
	}
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
	case "bench-list":
		return benchList(ctx, works)
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

// benchCreate creates COUNT works spread over the CLUSTERs, one client per cluster publishing one
// work after another, all clusters at once: args PREFIX COUNT KIB CLUSTER... Each client is the
// sdk-go source client with an in-memory store, as upstream's performance tool creates works,
// subscribed to its works' status; the clients connect before the clock starts. It answers each
// create's latency.
func benchCreate(ctx context.Context, tlsConfig *tls.Config, args []string) (any, error) {
	if len(args) < 4 {
		return nil, fmt.Errorf("usage: bench-create PREFIX COUNT KIB CLUSTER...")
	}
	prefix, clusters := args[0], args[3:]
	count, err := strconv.Atoi(args[1])
	if err != nil {
		return nil, fmt.Errorf("COUNT: %w", err)
	}
	kib, err := strconv.Atoi(args[2])
	if err != nil {
		return nil, fmt.Errorf("KIB: %w", err)
	}
	clients := make([]workv1client.ManifestWorkInterface, len(clusters))
	for i, cluster := range clusters {
		grpcOptions := &grpc.GRPCOptions{Dialer: &grpc.GRPCDialer{URL: *grpcAddr, TLSConfig: tlsConfig}}
		sourceOptions := grpc.NewSourceOptions(grpcOptions, *source, payload.ManifestBundleEventDataType)
		// The client's own limiter (50 events/s by default) would cap one client below what a
		// server answers: it is raised so that the servers are measured.
		sourceOptions.EventRateLimit = utils.EventRateLimit{QPS: float32(*qps), Burst: *qps}
		works := store.NewSimpleStore[*workv1.ManifestWork]()
		events, err := ceclients.NewCloudEventSourceClient(
			ctx, sourceOptions, store.NewSourceWatcherStoreLister(works), statushash.StatusHash, codec.NewManifestBundleCodec())
		if err != nil {
			return nil, err
		}
		events.Subscribe(ctx, works.HandleReceivedResource)
		client := sourceclient.NewManifestWorkSourceClient(*source, works, events)
		client.SetNamespace(cluster)
		clients[i] = client
	}
	padding := strings.Repeat("x", kib*1024)
	latencies := make([][]float64, len(clusters))
	failures := make([][]string, len(clusters))
	var wg sync.WaitGroup
	started := time.Now()
	for i := range clusters {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := i; j < count; j += len(clusters) {
				want := perfWork(fmt.Sprintf("%s-%d", prefix, j), padding)
				began := time.Now()
				if _, err := clients[i].Create(ctx, want, metav1.CreateOptions{}); err != nil {
					failures[i] = append(failures[i], err.Error())
					continue
				}
				latencies[i] = append(latencies[i], float64(time.Since(began).Microseconds())/1000)
			}
		}(i)
	}
	wg.Wait()
	seconds := time.Since(started).Seconds()
	all, errs := []float64{}, []string{}
	for i := range clusters {
		all = append(all, latencies[i]...)
		errs = append(errs, failures[i]...)
	}
	sort.Float64s(all)
	firstError := ""
	if len(errs) > 0 {
		firstError = errs[0]
	}
	return map[string]any{"latencies_ms": all, "seconds": seconds, "errors": len(errs), "first_error": firstError}, nil
}

// perfWork is a work of one ConfigMap carrying PADDING, applied server-side, as upstream's
// performance works are.
func perfWork(name, padding string) *workv1.ManifestWork {
	manifest := map[string]any{
		"apiVersion": "v1",
		"kind":       "ConfigMap",
		"metadata":   map[string]any{"name": name, "namespace": "default", "labels": map[string]string{"app": "perf"}},
		"data":       map[string]string{"payload": padding},
	}
	raw, _ := json.Marshal(manifest)
	return &workv1.ManifestWork{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"maestro.io/perf": "true"}},
		Spec: workv1.ManifestWorkSpec{
			Workload:     workv1.ManifestsTemplate{Manifests: []workv1.Manifest{{RawExtension: runtime.RawExtension{Raw: raw}}}},
			DeleteOption: &workv1.DeleteOption{PropagationPolicy: workv1.DeletePropagationPolicyTypeForeground},
			ManifestConfigs: []workv1.ManifestConfigOption{{
				ResourceIdentifier: workv1.ResourceIdentifier{Resource: "configmaps", Name: name, Namespace: "default"},
				UpdateStrategy:     &workv1.UpdateStrategy{Type: workv1.UpdateStrategyTypeServerSideApply},
			}},
		},
	}
}

// benchList lists every work of the source through the REST API, page by page as upstream's
// client does, and answers how many and how long it took.
func benchList(ctx context.Context, works workv1client.ManifestWorkInterface) (any, error) {
	started := time.Now()
	listed, err := works.List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	return map[string]any{"items": len(listed.Items), "seconds": time.Since(started).Seconds()}, nil
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
