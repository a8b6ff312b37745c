{{- define "fleetplane-hub.serverService" -}}
{{- include "fleetplane.name" (dict "root" . "component" "maestro") -}}
{{- end -}}

{{/* The address the controllers and the provisioner dial. */}}
{{- define "fleetplane-hub.serverAddress" -}}
{{- printf "%s.%s.svc:%d" (include "fleetplane-hub.serverService" .) .Release.Namespace (int .Values.server.port) -}}
{{- end -}}

