// Package kube is the collector's client of the Kubernetes API for its own
// pod, on net/http with the pod's service account (no client-go): where the
// API server is (KUBERNETES_SERVICE_HOST, KUBERNETES_SERVICE_PORT), which pod
// (POD_NAME and POD_NAMESPACE from the downward API), the token and CA of the
// service account, and GET on the pod and its subresources. What a caller
// reads of the pod it declares itself, as a struct of the fields it needs.
//
// JobName is the name of the Job that made the pod: the run's name that a
// retried pod keeps.
package kube
