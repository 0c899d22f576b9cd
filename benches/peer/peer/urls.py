"""allauth's headless API, and a no-op view: the framework's own ceiling."""
from django.http import HttpResponse
from django.urls import include, path


def noop(_request):
    return HttpResponse(b"", content_type="text/plain")


urlpatterns = [
    path("_allauth/", include("allauth.headless.urls")),
    path("noop", noop),
]
