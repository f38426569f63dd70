{{/*
The extender container and its volumes, shared by both topologies: the extender Deployment
(topology=service) and the chart's kube-scheduler pod (topology=scheduler-pod, as a sidecar).
Called with (dict "root" $ "sidecar" bool).
*/}}
{{- define "placement-extender.extenderContainer" -}}
{{- $ := .root -}}
- name: extender
  image: {{ include "placement-extender.image" $ }}
  imagePullPolicy: {{ $.Values.image.pullPolicy }}
  {{- if .sidecar }}
  # A native sidecar: started (and its startup probe passed) before kube-scheduler, stopped
  # after it, so the scheduler never calls an extender that is not there yet or has gone.
  restartPolicy: Always
  {{- end }}
  command: ["placement-extender"]
  args: ["serve", "--config", "/etc/placement-extender/config.yaml"]
  ports:
    {{- if not .sidecar }}
    - name: {{ include "placement-extender.portName" $ }}
      containerPort: {{ include "placement-extender.port" $ }}
      protocol: TCP
    {{- end }}
    - name: probes
      containerPort: {{ include "placement-extender.probePort" $ }}
      protocol: TCP
  env:
    - name: PYTHONDONTWRITEBYTECODE
      value: "1"
    - name: PYTHONUNBUFFERED
      value: "1"
    {{- with $.Values.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  startupProbe:
    httpGet:
      path: /healthz
      port: probes
      scheme: HTTP
    periodSeconds: 2
    timeoutSeconds: 2
    failureThreshold: 30
  livenessProbe:
    httpGet:
      path: /healthz
      port: probes
      scheme: HTTP
    periodSeconds: 10
    timeoutSeconds: 2
    failureThreshold: 3
  readinessProbe:
    httpGet:
      path: /readyz
      port: probes
      scheme: HTTP
    periodSeconds: 5
    timeoutSeconds: 2
    failureThreshold: 2
  {{- if gt (int $.Values.preStopSleepSeconds) 0 }}
  lifecycle:
    preStop:
      sleep:
        seconds: {{ $.Values.preStopSleepSeconds }}
  {{- end }}
  resources:
    {{- toYaml $.Values.resources | nindent 4 }}
  securityContext:
    {{- toYaml $.Values.securityContext | nindent 4 }}
  volumeMounts:
    - name: extender-config
      mountPath: /etc/placement-extender/config.yaml
      subPath: config.yaml
      readOnly: true
    - name: extender-tmp
      mountPath: /tmp
    {{- if include "placement-extender.tls" $ }}
    - name: extender-tls
      mountPath: {{ include "placement-extender.tlsDir" $ }}
      readOnly: true
    {{- end }}
    {{- if include "placement-extender.mtls" $ }}
    - name: extender-client-ca
      mountPath: {{ include "placement-extender.clientCaDir" $ }}
      readOnly: true
    {{- end }}
{{- end }}

{{- define "placement-extender.extenderVolumes" -}}
- name: extender-config
  configMap:
    name: {{ include "placement-extender.fullname" . }}
- name: extender-tmp
  emptyDir:
    sizeLimit: 64Mi
{{- if include "placement-extender.tls" . }}
- name: extender-tls
  secret:
    secretName: {{ include "placement-extender.tlsSecretName" . }}
    defaultMode: 0440
    items:
      - key: tls.crt
        path: tls.crt
      - key: tls.key
        path: tls.key
{{- end }}
{{- if include "placement-extender.mtls" . }}
# Only the CA that signs the scheduler's client certificate: the clients the extender trusts.
- name: extender-client-ca
  secret:
    secretName: {{ include "placement-extender.clientSecretName" . }}
    defaultMode: 0440
    items:
      - key: ca.crt
        path: ca.crt
{{- end }}
{{- end }}
