{{/* Named templates shared by fleetplane's charts. */}}

{{/* Names: the release name, prefixed with the chart's unless it already holds it. */}}
{{- define "fleetplane.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The name of one component's objects: (dict "root" $ "component" "server") */}}
{{- define "fleetplane.name" -}}
{{- printf "%s-%s" (include "fleetplane.fullname" .root) .component -}}
{{- end -}}

{{- define "fleetplane.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "fleetplane.labels" -}}
{{ include "fleetplane.selectorLabels" . }}
app.kubernetes.io/part-of: fleetplane
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{/* image: (dict "root" $ "image" .Values.server.image) */}}
{{- define "fleetplane.image" -}}
{{- printf "%s:%s" .image.repository (.image.tag | default .root.Values.imageTag | default .root.Chart.AppVersion) -}}
{{- end -}}

{{- define "fleetplane.tlsDir" -}}/var/run/fleetplane/tls{{- end -}}

{{/* How a gRPC client or server is secured: its mounted identity, or plaintext. */}}
{{- define "fleetplane.tlsArgs" -}}
{{- if .Values.tls.enabled -}}
- --tls-dir
- {{ include "fleetplane.tlsDir" . }}
{{- else -}}
- --insecure
{{- end -}}
{{- end -}}

{{/* The pod-level settings every component shares. */}}
{{- define "fleetplane.podCommon" -}}
securityContext:
  {{- toYaml .root.Values.podSecurityContext | nindent 2 }}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The volumes every component has: /tmp, and its identity when TLS is on. */}}
{{- define "fleetplane.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .root.Values.tmpSizeLimit }}
{{- if .root.Values.tls.enabled }}
- name: tls
  secret:
    secretName: {{ .secret }}
    defaultMode: 0440
{{- end }}
{{- end -}}

{{- define "fleetplane.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .Values.tls.enabled }}
- name: tls
  mountPath: {{ include "fleetplane.tlsDir" . }}
  readOnly: true
{{- end }}
{{- end -}}

{{- define "fleetplane.containerCommon" -}}
imagePullPolicy: {{ .Values.imagePullPolicy }}
securityContext:
  {{- toYaml .Values.containerSecurityContext | nindent 2 }}
{{- end -}}

{{/* One egress rule: (dict "to" [peers] "ports" [ints]); TCP, and UDP too for DNS. */}}
{{- define "fleetplane.egressRule" -}}
- ports:
    {{- range .ports }}
    - protocol: TCP
      port: {{ . }}
    {{- if $.udp }}
    - protocol: UDP
      port: {{ . }}
    {{- end }}
    {{- end }}
  {{- with .to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}

{{/*
The health port of a process with /healthz and /readyz (the server, the agent, the controllers,
the provisioner): its arguments, (dict "port" PORT), and its container port's probes. Ready: the
process does all its work (a replica whose loop died leaves its Service); live: its event loop
answers.
*/}}
{{- define "fleetplane.healthArgs" -}}
# the kubelet probes the pod's address
- --health-host
- 0.0.0.0
- --health-port
- {{ .port | quote }}
{{- end -}}

{{- define "fleetplane.healthProbes" -}}
readinessProbe:
  httpGet:
    path: /readyz
    port: health
  periodSeconds: 10
  timeoutSeconds: 2
livenessProbe:
  httpGet:
    path: /healthz
    port: health
  initialDelaySeconds: 30
  periodSeconds: 20
{{- end -}}

{{/* The metrics port, when .Values.metrics.enabled: its arguments, container port, pod
annotations and NetworkPolicy ingress rule (from networkPolicy.metricsFrom; any peer when empty). */}}
{{- define "fleetplane.metricsArgs" -}}
{{- if .Values.metrics.enabled -}}
- --metrics-host
- 0.0.0.0
- --metrics-port
- {{ .Values.metrics.port | quote }}
{{- end -}}
{{- end -}}

{{- define "fleetplane.metricsContainerPort" -}}
{{- if .Values.metrics.enabled -}}
- name: metrics
  containerPort: {{ .Values.metrics.port }}
{{- end -}}
{{- end -}}

{{- define "fleetplane.metricsAnnotations" -}}
{{- if and .Values.metrics.enabled .Values.metrics.annotations -}}
annotations:
  prometheus.io/scrape: "true"
  prometheus.io/port: {{ .Values.metrics.port | quote }}
  prometheus.io/path: /metrics
{{- end -}}
{{- end -}}

{{- define "fleetplane.metricsIngress" -}}
{{- if .Values.metrics.enabled -}}
- ports:
    - protocol: TCP
      port: {{ .Values.metrics.port }}
  {{- with .Values.networkPolicy.metricsFrom }}
  from:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
{{- end -}}

{{/*
A Prometheus Operator ServiceMonitor of every process of the release, when
.Values.metrics.serviceMonitor.enabled: a headless Service whose endpoints are the release's pods'
metrics ports (the operators have no Service of their own), and the ServiceMonitor that selects it.
Each target keeps its pod's component label.
*/}}
{{- define "fleetplane.serviceMonitor" -}}
{{- $m := .Values.metrics -}}
{{- if $m.serviceMonitor.enabled -}}
{{- if not $m.enabled -}}
{{- fail "metrics.serviceMonitor.enabled needs metrics.enabled: true (the processes serve no /metrics otherwise)" -}}
{{- end -}}
{{- $c := dict "root" . "component" "metrics" -}}
{{- $name := include "fleetplane.name" $c -}}
{{- $sm := $m.serviceMonitor -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "fleetplane.labels" $c | nindent 4 }}
spec:
  clusterIP: None
  selector:
    app.kubernetes.io/name: {{ .Chart.Name }}
    app.kubernetes.io/instance: {{ .Release.Name }}
  ports:
    - name: metrics
      port: {{ $m.port }}
      targetPort: metrics
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ $name }}
  namespace: {{ $sm.namespace | default .Release.Namespace }}
  labels:
    {{- include "fleetplane.labels" $c | nindent 4 }}
    {{- with $sm.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      {{- include "fleetplane.selectorLabels" $c | nindent 6 }}
  namespaceSelector:
    matchNames:
      - {{ .Release.Namespace }}
  podTargetLabels:
    - app.kubernetes.io/component
  endpoints:
    - port: metrics
      path: /metrics
      scheme: http
      interval: {{ $sm.interval }}
      scrapeTimeout: {{ $sm.scrapeTimeout }}
{{- end -}}
{{- end -}}
