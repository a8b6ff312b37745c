{{- define "fleetplane-hub.serverService" -}}
{{- include "fleetplane.name" (dict "root" . "component" "maestro") -}}
{{- end -}}

{{/* The address the controllers and the provisioner dial. */}}
{{- define "fleetplane-hub.serverAddress" -}}
{{- printf "%s.%s.svc:%d" (include "fleetplane-hub.serverService" .) .Release.Namespace (int .Values.server.port) -}}
{{- end -}}

{{/* The operators' leader election: (dict "root" $ "lease" NAME) */}}
{{- define "fleetplane-hub.leaderElectionArgs" -}}
{{- $e := .root.Values.leaderElection -}}
{{- if $e.enabled -}}
{{- if ge (float64 $e.renewDeadline) (float64 $e.leaseDuration) -}}
{{- fail (printf "leaderElection.renewDeadline (%v) must be shorter than leaderElection.leaseDuration (%v), or a leader cut off from the API server could still act when a standby takes over: lower it or raise the duration" $e.renewDeadline $e.leaseDuration) -}}
{{- end -}}
{{- if le (float64 $e.renewDeadline) (mulf 1.2 $e.retryPeriod) -}}
{{- fail (printf "leaderElection.renewDeadline (%v) must be longer than 1.2 x leaderElection.retryPeriod (%v), or one slow renewal would end the leadership: lower the retry period or raise the deadline" $e.renewDeadline $e.retryPeriod) -}}
{{- end -}}
- --leader-elect
- --leader-elect-resource-name
- {{ .lease }}
- --leader-elect-resource-namespace
- {{ .root.Release.Namespace }}
- --leader-elect-lease-duration
- {{ $e.leaseDuration | quote }}
- --leader-elect-renew-deadline
- {{ $e.renewDeadline | quote }}
- --leader-elect-retry-period
- {{ $e.retryPeriod | quote }}
{{- else -}}
- --no-leader-elect
{{- end -}}
{{- end -}}
