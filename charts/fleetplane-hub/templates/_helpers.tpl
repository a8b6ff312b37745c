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

{{/* The hub's Argo CD (argocd.*, gitops.*): its namespace, holding its configuration and the inventory. */}}
{{- define "fleetplane-hub.argocdNamespace" -}}
{{- .Values.argocd.namespace | default .Values.inventoryNamespace -}}
{{- end -}}

{{/* "true" when a component of the hub's Argo CD runs, and so its Redis; "" otherwise. */}}
{{- define "fleetplane-hub.argocdRedis" -}}
{{- if or .Values.argocd.server.enabled .Values.gitops.enabled -}}
{{- if not .Values.tls.enabled -}}
{{- fail "argocd.server.enabled and gitops.enabled need tls.enabled: the hub's Argo CD talks to its Redis and repo-server with certificates of the platform CA only" -}}
{{- end -}}
true
{{- end -}}
{{- end -}}

{{/* The host of argocd.server.url ("" when unset), which its certificate names too. */}}
{{- define "fleetplane-hub.argocdHost" -}}
{{- with .Values.argocd.server.url -}}
{{- regexReplaceAll ":[0-9]+$" (urlParse .).host "" -}}
{{- end -}}
{{- end -}}

{{/* Argo CD's log level for logLevel (Argo CD says warn, not warning). */}}
{{- define "fleetplane-hub.argocdLogLevel" -}}
{{- eq .Values.logLevel "warning" | ternary "warn" .Values.logLevel -}}
{{- end -}}

{{/*
What an Argo CD component needs of its Redis: TLS checked against the platform CA, the client
certificate of its own identity (mounted at /app/config/identity), and the password read from a
mounted file (REDIS_CREDS_DIR_PATH), never from the environment its git and helm children inherit.
*/}}
{{- define "fleetplane-hub.argocdRedisArgs" -}}
- --redis
- argocd-redis:6379
- --redis-use-tls
- --redis-ca-certificate
- /app/config/identity/ca.crt
- --redis-client-certificate
- /app/config/identity/tls.crt
- --redis-client-key
- /app/config/identity/tls.key
{{- end -}}

{{/* The volumes of an Argo CD component: (dict "root" $ "identity" SECRET) */}}
{{- define "fleetplane-hub.argocdVolumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .root.Values.tmpSizeLimit }}
- name: identity
  secret:
    secretName: {{ .identity }}
    defaultMode: 0440
- name: redis-auth
  secret:
    secretName: argocd-redis
    items: [{key: auth, path: auth}]
    defaultMode: 0440
{{- end -}}

{{- define "fleetplane-hub.argocdMounts" -}}
- name: tmp
  mountPath: /tmp
- name: identity
  mountPath: /app/config/identity
  readOnly: true
- name: redis-auth
  mountPath: /app/config/redis-auth
  readOnly: true
{{- end -}}

{{- define "fleetplane-hub.argocdEnv" -}}
- name: HOME
  value: /tmp
- name: REDIS_CREDS_DIR_PATH
  value: /app/config/redis-auth
{{- end -}}
