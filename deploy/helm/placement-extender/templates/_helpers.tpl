{{/*
Chart name, truncated to a DNS label.
*/}}
{{- define "placement-extender.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: <release>-<chart>, or the release name when it already contains the chart name.
Truncated to 53 characters so that suffixed names ("-scheduler", "-tls") stay within 63.
*/}}
{{- define "placement-extender.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 53 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 53 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 53 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "placement-extender.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels shared by every object.
*/}}
{{- define "placement-extender.commonLabels" -}}
helm.sh/chart: {{ include "placement-extender.chart" . }}
app.kubernetes.io/name: {{ include "placement-extender.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: placement-extender
{{- end }}

{{/*
Extender labels and selector labels.
*/}}
{{- define "placement-extender.labels" -}}
{{ include "placement-extender.commonLabels" . }}
app.kubernetes.io/component: extender
{{- end }}

{{- define "placement-extender.selectorLabels" -}}
app.kubernetes.io/name: {{ include "placement-extender.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: extender
{{- end }}

{{/*
Scheduler names, labels and selector labels.
*/}}
{{- define "placement-extender.scheduler.fullname" -}}
{{- printf "%s-scheduler" (include "placement-extender.fullname" .) }}
{{- end }}

{{- define "placement-extender.scheduler.labels" -}}
{{ include "placement-extender.commonLabels" . }}
app.kubernetes.io/component: scheduler
{{- end }}

{{- define "placement-extender.scheduler.selectorLabels" -}}
app.kubernetes.io/name: {{ include "placement-extender.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: scheduler
{{- end }}

{{/*
The `helm test` pod's labels (admitted to the probe port by the NetworkPolicy).
*/}}
{{- define "placement-extender.testSelectorLabels" -}}
app.kubernetes.io/name: {{ include "placement-extender.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: test
{{- end }}

{{/*
ServiceAccount names.
*/}}
{{- define "placement-extender.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "placement-extender.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "placement-extender.scheduler.serviceAccountName" -}}
{{- include "placement-extender.scheduler.fullname" . }}
{{- end }}

{{/*
The ServiceAccount the extender runs as: the scheduler's in topology=scheduler-pod (a pod has one),
its own in topology=service.
*/}}
{{- define "placement-extender.extenderServiceAccountName" -}}
{{- if include "placement-extender.inSchedulerPod" . }}
{{- include "placement-extender.scheduler.serviceAccountName" . }}
{{- else }}
{{- include "placement-extender.serviceAccountName" . }}
{{- end }}
{{- end }}

{{/*
Topology: "true" when the extender is a container of the chart's kube-scheduler pod
(topology=scheduler-pod), empty for topology=service (its own Deployment behind the Service).
*/}}
{{- define "placement-extender.inSchedulerPod" -}}
{{- if eq .Values.topology "scheduler-pod" }}true{{ end }}
{{- end }}

{{/*
The kube-scheduler image: scheduler.image.tag, else the cluster's own version (vMAJOR.MINOR.PATCH,
without a distribution's suffix such as -eks-1234 or +k3s1).
*/}}
{{- define "placement-extender.scheduler.image" -}}
{{- $image := .Values.scheduler.image }}
{{- $tag := $image.tag }}
{{- if not $tag }}
{{- $v := semver .Capabilities.KubeVersion.Version }}
{{- $tag = printf "v%d.%d.%d" $v.Major $v.Minor $v.Patch }}
{{- end }}
{{- printf "%s:%s" $image.repository $tag }}
{{- end }}

{{- define "placement-extender.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
The extender's listening port: config.server.port (the app's default is 8888).
*/}}
{{- define "placement-extender.port" -}}
{{- dig "server" "port" 8888 (.Values.config | default dict) | int }}
{{- end }}

{{- define "placement-extender.portName" -}}
{{- if include "placement-extender.tls" . }}https{{ else }}http{{ end }}
{{- end }}

{{- define "placement-extender.scheme" -}}
{{- if include "placement-extender.tls" . }}https{{ else }}http{{ end }}
{{- end }}

{{/*
The bind budget (config.bind.budget_seconds, app default 3.0) as a float.
*/}}
{{- define "placement-extender.bindBudget" -}}
{{- dig "bind" "budget_seconds" 3.0 (.Values.config | default dict) | float64 }}
{{- end }}

{{/*
TLS: the Secret holding tls.crt, tls.key and ca.crt, and where each side mounts it.
*/}}
{{- define "placement-extender.tlsSecretName" -}}
{{- if .Values.tls.secretName }}
{{- .Values.tls.secretName }}
{{- else if .Values.tls.certManager.enabled }}
{{- printf "%s-tls" (include "placement-extender.fullname" .) }}
{{- else }}
{{- fail "topology=service serves the extender over mutual TLS by default (tls.enabled=true): set tls.secretName (an existing Secret with tls.crt, tls.key and ca.crt) or tls.certManager.enabled=true with tls.certManager.issuerRef.name; or opt out with tls.enabled=false (plain HTTP, guarded by the NetworkPolicy only)" }}
{{- end }}
{{- end }}

{{- define "placement-extender.tlsDir" -}}/etc/placement-extender/tls{{- end }}
{{- define "placement-extender.caDir" -}}/etc/placement-extender/ca{{- end }}

{{/*
TLS: "true" when the extender port serves HTTPS (topology=service with tls.enabled; in
topology=scheduler-pod the verbs never leave the pod).
*/}}
{{- define "placement-extender.tls" -}}
{{- if and (not (include "placement-extender.inSchedulerPod" .)) .Values.tls.enabled }}true{{ end }}
{{- end }}

{{/*
Mutual TLS: "true" when the extender port requires the scheduler's client certificate.
*/}}
{{- define "placement-extender.mtls" -}}
{{- if and (include "placement-extender.tls" .) .Values.tls.clientAuth.enabled }}true{{ end }}
{{- end }}

{{/*
The Secret with the scheduler's client certificate (tls.crt, tls.key) and its CA (ca.crt).
*/}}
{{- define "placement-extender.clientSecretName" -}}
{{- default (printf "%s-scheduler-client" (include "placement-extender.fullname" .)) .Values.tls.clientAuth.existingSecret }}
{{- end }}

{{- define "placement-extender.clientCertDir" -}}/etc/placement-extender/client{{- end }}
{{- define "placement-extender.clientCaDir" -}}/etc/placement-extender/client-ca{{- end }}

{{/*
The plain-HTTP port for /healthz, /readyz and /metrics (config.server.probe_port).
*/}}
{{- define "placement-extender.probePort" -}}
{{- $port := dig "server" "probe_port" nil (.Values.config | default dict) }}
{{- if not $port }}
{{- fail "config.server.probe_port is required: kubelet probes and Prometheus use it (they have no client certificate)" }}
{{- end }}
{{- $port | int }}
{{- end }}

{{/*
kube-scheduler's urlPrefix: loopback inside the scheduler's pod (topology=scheduler-pod), else the
Service's in-cluster name.
*/}}
{{- define "placement-extender.url" -}}
{{- if include "placement-extender.inSchedulerPod" . }}
{{- printf "http://127.0.0.1:%s" (include "placement-extender.port" .) }}
{{- else }}
{{- printf "%s://%s.%s.svc:%s" (include "placement-extender.scheme" .) (include "placement-extender.fullname" .) .Release.Namespace (include "placement-extender.port" .) }}
{{- end }}
{{- end }}

{{/*
Every check that must stop a bad install. Included by templates/validate.yaml.
*/}}
{{- define "placement-extender.validate" -}}
{{- if include "placement-extender.inSchedulerPod" . }}
{{- if not .Values.scheduler.enabled }}
{{- fail "topology=scheduler-pod runs the extender inside the chart's kube-scheduler pod, so it needs scheduler.enabled=true; for a kube-scheduler outside the chart set topology=service" }}
{{- end }}
{{- if or .Values.tls.secretName .Values.tls.certManager.enabled .Values.tls.clientAuth.existingSecret }}
{{- fail "tls.* applies to topology=service: in topology=scheduler-pod kube-scheduler calls the extender on 127.0.0.1 inside its pod, so nothing crosses the network; unset tls.secretName, tls.certManager.enabled and tls.clientAuth.existingSecret" }}
{{- end }}
{{- if hasKey (dig "server" dict (.Values.config | default dict)) "host" }}
{{- fail "config.server.host is set by the chart in topology=scheduler-pod (127.0.0.1: only the scheduler's pod may call the verbs); set config.server.probe_host for the probe listener instead" }}
{{- end }}
{{- end }}
{{- $timeout := .Values.scheduler.httpTimeoutSeconds | float64 }}
{{- $budget := include "placement-extender.bindBudget" . | float64 }}
{{- if le $timeout $budget }}
{{- fail (printf "scheduler.httpTimeoutSeconds (%v) must be greater than config.bind.budget_seconds (%v): kube-scheduler would abandon a bind the extender is still committing" .Values.scheduler.httpTimeoutSeconds $budget) }}
{{- end }}
{{- $server := dig "server" dict (.Values.config | default dict) }}
{{- $stopping := addf .Values.preStopSleepSeconds (dig "shutdown_delay_seconds" 0.0 $server) (dig "read_timeout_seconds" 5.0 $server) $budget 1.0 }}
{{- if lt (float64 .Values.terminationGracePeriodSeconds) (float64 $stopping) }}
{{- fail (printf "terminationGracePeriodSeconds (%v) must be at least %v: preStopSleepSeconds + config.server.shutdown_delay_seconds + config.server.read_timeout_seconds + config.bind.budget_seconds + 1, or a bind in flight at shutdown is killed" .Values.terminationGracePeriodSeconds $stopping) }}
{{- end }}
{{- if or (hasKey $server "tls_cert_file") (hasKey $server "tls_key_file") (hasKey $server "tls_client_ca_file") }}
{{- fail "set tls.enabled (and tls.secretName or tls.certManager) instead of config.server.tls_cert_file/tls_key_file: the chart mounts the certificate and switches probes and the scheduler to HTTPS" }}
{{- end }}
{{- $_ := include "placement-extender.probePort" . }}
{{- if and .Values.networkPolicy.enabled (not .Values.scheduler.enabled) (not .Values.networkPolicy.extenderFrom) (not (include "placement-extender.inSchedulerPod" .)) }}
{{- fail "networkPolicy.enabled with scheduler.enabled=false admits no caller to the extender: list your kube-scheduler in networkPolicy.extenderFrom (an ipBlock for a host-network one), or set networkPolicy.enabled=false" }}
{{- end }}
{{- if include "placement-extender.tls" . }}
{{- $_ := include "placement-extender.tlsSecretName" . }}
{{- if and .Values.tls.certManager.enabled (not .Values.tls.certManager.issuerRef.name) }}
{{- fail "tls.certManager.enabled=true needs tls.certManager.issuerRef.name" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The app config file: .Values.config plus the listen addresses in topology=scheduler-pod and the
TLS file paths when the extender port serves TLS.
*/}}
{{- define "placement-extender.appConfig" -}}
{{- $cfg := deepCopy (.Values.config | default dict) }}
{{- if include "placement-extender.inSchedulerPod" . }}
{{- $server := deepCopy (dig "server" dict $cfg) }}
{{- $_ := set $server "host" "127.0.0.1" }}
{{- if not (get $server "probe_host") }}
{{- $_ := set $server "probe_host" "0.0.0.0" }}
{{- end }}
{{- $_ := set $cfg "server" $server }}
{{- end }}
{{- if include "placement-extender.tls" . }}
{{- $server := deepCopy (dig "server" dict $cfg) }}
{{- $_ := set $server "tls_cert_file" (printf "%s/tls.crt" (include "placement-extender.tlsDir" .)) }}
{{- $_ := set $server "tls_key_file" (printf "%s/tls.key" (include "placement-extender.tlsDir" .)) }}
{{- if include "placement-extender.mtls" . }}
{{- $_ := set $server "tls_client_ca_file" (printf "%s/ca.crt" (include "placement-extender.clientCaDir" .)) }}
{{- end }}
{{- $_ := set $cfg "server" $server }}
{{- end }}
{{- $server := deepCopy (dig "server" dict $cfg) }}
{{- if not (hasKey $server "explain") }}
{{- /* /explain: for authenticated callers only (a client certificate, or inside the pod) */ -}}
{{- $_ := set $server "explain" (or (eq (include "placement-extender.mtls" .) "true") (eq (include "placement-extender.inSchedulerPod" .) "true")) }}
{{- end }}
{{- $_ := set $cfg "server" $server }}
{{- $kube := deepCopy (dig "kube" dict $cfg) }}
{{- $_ := set $kube "ledger_namespace" .Release.Namespace }}
{{- $_ := set $cfg "kube" $kube }}
{{- toYaml $cfg }}
{{- end }}

{{/*
kube-scheduler's httpTimeout, e.g. "5s".
*/}}
{{- define "placement-extender.httpTimeout" -}}
{{- printf "%ds" (.Values.scheduler.httpTimeoutSeconds | int) }}
{{- end }}

{{/*
The `extenders:` entry of a KubeSchedulerConfiguration (kubescheduler.config.k8s.io/v1).
The verbs are the extender's routes: POST /filter, /prioritize, /bind.
*/}}
{{- define "placement-extender.extenderConfig" -}}
- urlPrefix: {{ include "placement-extender.url" . | quote }}
  filterVerb: filter
  prioritizeVerb: prioritize
  bindVerb: bind
  preemptVerb: preempt
  weight: {{ .Values.scheduler.weight | int }}
  nodeCacheCapable: {{ .Values.scheduler.nodeCacheCapable }}
  httpTimeout: {{ include "placement-extender.httpTimeout" . }}
  ignorable: {{ .Values.scheduler.ignorable }}
  {{- if include "placement-extender.tls" . }}
  enableHTTPS: true
  tlsConfig:
    caFile: {{ include "placement-extender.caDir" . }}/ca.crt
    {{- if include "placement-extender.mtls" . }}
    certFile: {{ include "placement-extender.clientCertDir" . }}/tls.crt
    keyFile: {{ include "placement-extender.clientCertDir" . }}/tls.key
    {{- end }}
  {{- end }}
{{- end }}

{{/*
Hardened pod spec pieces shared by both Deployments.
*/}}
{{- define "placement-extender.spread" -}}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- .selector | nindent 8 }}
{{- end }}
