{{/*
The ServiceAccount and Deployment of one kopf operator (the controllers, the provisioner):
(dict "root" $ "component" NAME "values" .Values.NAME "args" [ARGS] "volumes" [VOLUMES] "mounts" [MOUNTS])
*/}}
{{- define "fleetplane-hub.operator" -}}
{{- $root := .root -}}
{{- $c := dict "root" .root "component" .component -}}
{{- $name := include "fleetplane.name" $c -}}
{{- $v := .values -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ $name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "fleetplane.labels" $c | nindent 4 }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "fleetplane.labels" $c | nindent 4 }}
spec:
  # kopf runs standalone: one replica, replaced on failure.
  replicas: 1
  strategy:
    type: Recreate
  selector:
    matchLabels:
      {{- include "fleetplane.selectorLabels" $c | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "fleetplane.labels" $c | nindent 8 }}
      {{- with include "fleetplane.metricsAnnotations" $root }}
      {{- . | nindent 6 }}
      {{- end }}
    spec:
      serviceAccountName: {{ $name }}
      {{- include "fleetplane.podCommon" (dict "root" $root "values" $v) | nindent 6 }}
      containers:
        - name: {{ .component }}
          image: {{ include "fleetplane.image" (dict "root" $root "image" $v.image) }}
          {{- include "fleetplane.containerCommon" $root | nindent 10 }}
          command: [fleetplane]
          args:
            {{- toYaml .args | nindent 12 }}
            - --maestro
            - {{ include "fleetplane-hub.serverAddress" $root }}
            - --inventory-namespace
            - {{ $root.Values.inventoryNamespace }}
            {{- include "fleetplane.tlsArgs" $root | nindent 12 }}
            {{- include "fleetplane.healthArgs" (dict "port" $v.healthPort) | nindent 12 }}
            {{- with include "fleetplane.metricsArgs" $root }}
            {{- . | nindent 12 }}
            {{- end }}
            - --log-level
            - {{ $root.Values.logLevel }}
            {{- with $v.extraArgs }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          env:
            - name: HOME
              value: /tmp
          ports:
            - name: health
              containerPort: {{ $v.healthPort }}
            {{- with include "fleetplane.metricsContainerPort" $root }}
            {{- . | nindent 12 }}
            {{- end }}
          # Ready: kopf watches what the operator serves and the hub answers (the controllers: the
          # Maestro server serves too, and their background loops run); live: the event loop answers.
          {{- include "fleetplane.healthProbes" $root | nindent 10 }}
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          volumeMounts:
            {{- include "fleetplane.volumeMounts" $root | nindent 12 }}
            {{- with .mounts }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
      volumes:
        {{- include "fleetplane.volumes" (dict "root" $root "secret" $v.tlsSecret) | nindent 8 }}
        {{- with .volumes }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
{{- end -}}
