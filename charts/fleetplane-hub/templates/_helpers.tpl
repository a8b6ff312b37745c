{{- define "fleetplane-hub.serverService" -}}
{{- include "fleetplane.name" (dict "root" . "component" "maestro") -}}
{{- end -}}

{{/* The address the controllers and the provisioner dial. */}}
{{- define "fleetplane-hub.serverAddress" -}}
{{- printf "%s.%s.svc:%d" (include "fleetplane-hub.serverService" .) .Release.Namespace (int .Values.server.port) -}}
{{- end -}}

{{/* The kopf operators' liveness endpoint and the kubelet's probe of it. */}}
{{- define "fleetplane-hub.livenessArgs" -}}
- --liveness
- {{ printf "http://0.0.0.0:%d/healthz" (int .) }}
{{- end -}}

{{- define "fleetplane-hub.livenessProbe" -}}
livenessProbe:
  httpGet:
    path: /healthz
    port: health
  initialDelaySeconds: 10
  periodSeconds: 20
  timeoutSeconds: 5
{{- end -}}
