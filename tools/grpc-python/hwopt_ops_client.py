#!/usr/bin/env python3
"""A client of the hwopt coordinator that shares no code with it.

It learns hwopt.v1.OpsService through gRPC server reflection and calls it
with dynamic messages, using only Debian's python3-grpcio and
python3-protobuf (no generated code, no grpcio-reflection or
grpcio-health-checking package). It shows that other tools can call the
ops service from the server's own description of it.

    python3 tools/grpc-python/hwopt_ops_client.py --address 127.0.0.1:50551 services
    python3 tools/grpc-python/hwopt_ops_client.py health
    python3 tools/grpc-python/hwopt_ops_client.py call ListFleet
    python3 tools/grpc-python/hwopt_ops_client.py call ListConfigs '{"nodeName": "t4-a"}'
    python3 tools/grpc-python/hwopt_ops_client.py call ExportProfile '{"nodeName": "t4-a"}'

Every command prints one JSON document on stdout. Exit status: 0 on
success, 1 when a call fails (the gRPC status is printed on stderr), 2 on
bad arguments.
"""

import argparse
import json
import sys

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

OPS_SERVICE = "hwopt.v1.OpsService"
REFLECTION_METHOD = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
HEALTH_METHOD = "/grpc.health.v1.Health/Check"
HEALTH_STATUS = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}
# Maximum files one reflection response may hold; a server that sends more is not trusted further.
MAX_FILES = 200
FIELD = descriptor_pb2.FieldDescriptorProto


def _message_class(pool, full_name):
    descriptor = pool.FindMessageTypeByName(full_name)
    # GetMessageClass arrived in protobuf 4.22; Debian 12 ships 4.21, which has only the factory.
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(descriptor)
    return message_factory.MessageFactory(pool).GetPrototype(descriptor)


def _field(message, name, number, kind, label=FIELD.LABEL_OPTIONAL, type_name=None):
    field = message.field.add(name=name, number=number, type=kind, label=label)
    if type_name:
        field.type_name = type_name


def _protocol_pool():
    """Declare the reflection and health messages this client needs.

    Only the fields used here are declared; protobuf skips the others on
    the wire, so the subset reads the full messages.
    """
    reflection = descriptor_pb2.FileDescriptorProto(name="hwopt_client/reflection_v1_subset.proto", package="grpc.reflection.v1", syntax="proto3")
    request = reflection.message_type.add(name="ServerReflectionRequest")
    _field(request, "host", 1, FIELD.TYPE_STRING)
    _field(request, "file_by_filename", 3, FIELD.TYPE_STRING)
    _field(request, "file_containing_symbol", 4, FIELD.TYPE_STRING)
    _field(request, "list_services", 7, FIELD.TYPE_STRING)
    files = reflection.message_type.add(name="FileDescriptorResponse")
    _field(files, "file_descriptor_proto", 1, FIELD.TYPE_BYTES, FIELD.LABEL_REPEATED)
    service = reflection.message_type.add(name="ServiceResponse")
    _field(service, "name", 1, FIELD.TYPE_STRING)
    services = reflection.message_type.add(name="ListServiceResponse")
    _field(services, "service", 1, FIELD.TYPE_MESSAGE, FIELD.LABEL_REPEATED, ".grpc.reflection.v1.ServiceResponse")
    error = reflection.message_type.add(name="ErrorResponse")
    _field(error, "error_code", 1, FIELD.TYPE_INT32)
    _field(error, "error_message", 2, FIELD.TYPE_STRING)
    response = reflection.message_type.add(name="ServerReflectionResponse")
    _field(response, "file_descriptor_response", 4, FIELD.TYPE_MESSAGE, type_name=".grpc.reflection.v1.FileDescriptorResponse")
    _field(response, "list_services_response", 6, FIELD.TYPE_MESSAGE, type_name=".grpc.reflection.v1.ListServiceResponse")
    _field(response, "error_response", 7, FIELD.TYPE_MESSAGE, type_name=".grpc.reflection.v1.ErrorResponse")

    health = descriptor_pb2.FileDescriptorProto(name="hwopt_client/health_v1_subset.proto", package="grpc.health.v1", syntax="proto3")
    _field(health.message_type.add(name="HealthCheckRequest"), "service", 1, FIELD.TYPE_STRING)
    # An enum on the wire is a varint; reading it as int32 needs no enum declaration.
    _field(health.message_type.add(name="HealthCheckResponse"), "status", 1, FIELD.TYPE_INT32)

    pool = descriptor_pool.DescriptorPool()
    pool.Add(reflection)
    pool.Add(health)
    return pool


class OpsClient:
    def __init__(self, address, token=None, timeout=10.0, root_ca=None):
        if root_ca:
            with open(root_ca, "rb") as handle:
                self.channel = grpc.secure_channel(address, grpc.ssl_channel_credentials(root_certificates=handle.read()))
        else:
            self.channel = grpc.insecure_channel(address)
        self.metadata = (("authorization", "Bearer " + token),) if token else ()
        self.timeout = timeout
        protocol = _protocol_pool()
        self._request = _message_class(protocol, "grpc.reflection.v1.ServerReflectionRequest")
        self._response = _message_class(protocol, "grpc.reflection.v1.ServerReflectionResponse")
        self._health_request = _message_class(protocol, "grpc.health.v1.HealthCheckRequest")
        self._health_response = _message_class(protocol, "grpc.health.v1.HealthCheckResponse")
        self._pool = None

    def close(self):
        self.channel.close()

    def _reflect(self, **request):
        """One reflection request on its own stream; returns the response message."""
        call = self.channel.stream_stream(REFLECTION_METHOD, request_serializer=lambda m: m.SerializeToString(), response_deserializer=self._response.FromString)
        responses = list(call(iter([self._request(**request)]), timeout=self.timeout, metadata=self.metadata))
        if len(responses) != 1:
            raise RuntimeError("reflection answered %d messages to one request" % len(responses))
        response = responses[0]
        if response.HasField("error_response"):
            raise RuntimeError("reflection error %d: %s" % (response.error_response.error_code, response.error_response.error_message))
        return response

    def services(self):
        return sorted(s.name for s in self._reflect(list_services="*").list_services_response.service)

    def health(self, service=""):
        call = self.channel.unary_unary(HEALTH_METHOD, request_serializer=lambda m: m.SerializeToString(), response_deserializer=self._health_response.FromString)
        response = call(self._health_request(service=service), timeout=self.timeout, metadata=self.metadata)
        return HEALTH_STATUS.get(response.status, str(response.status))

    def _ops_pool(self):
        """Fetch every file the ops service needs by reflection and add them in dependency order."""
        if self._pool is not None:
            return self._pool
        files = {}

        def fetch(**request):
            for raw in self._reflect(**request).file_descriptor_response.file_descriptor_proto:
                parsed = descriptor_pb2.FileDescriptorProto.FromString(raw)
                files.setdefault(parsed.name, parsed)
                if len(files) > MAX_FILES:
                    raise RuntimeError("reflection named more than %d files" % MAX_FILES)

        fetch(file_containing_symbol=OPS_SERVICE)
        # A server may return the file alone, so each missing import is requested by name.
        missing = [d for f in list(files.values()) for d in f.dependency if d not in files]
        while missing:
            fetch(file_by_filename=missing.pop())
            missing = [d for f in list(files.values()) for d in f.dependency if d not in files]

        pool = descriptor_pool.DescriptorPool()
        added = set()

        def add(name, path=()):
            if name in added:
                return
            if name in path:
                raise RuntimeError("import cycle through %s" % name)
            for dependency in files[name].dependency:
                add(dependency, path + (name,))
            pool.Add(files[name])
            added.add(name)

        for name in sorted(files):
            add(name)
        self._pool = pool
        return pool

    def methods(self):
        service = self._ops_pool().FindServiceByName(OPS_SERVICE)
        return [m.name for m in service.methods]

    def call(self, method_name, request_json="{}"):
        """Calls a unary method of the ops service with a JSON request; returns the response as a dict."""
        pool = self._ops_pool()
        service = pool.FindServiceByName(OPS_SERVICE)
        method = service.methods_by_name.get(method_name)
        if method is None:
            raise KeyError("%s has no method %s; it has %s" % (OPS_SERVICE, method_name, ", ".join(m.name for m in service.methods)))
        if method.client_streaming or method.server_streaming:
            raise ValueError("%s streams; this client calls unary methods only" % method_name)
        request_class = _message_class(pool, method.input_type.full_name)
        response_class = _message_class(pool, method.output_type.full_name)
        request = json_format.Parse(request_json, request_class())
        call = self.channel.unary_unary("/%s/%s" % (OPS_SERVICE, method_name), request_serializer=lambda m: m.SerializeToString(), response_deserializer=response_class.FromString)
        response = call(request, timeout=self.timeout, metadata=self.metadata)
        return json_format.MessageToDict(response)


def main(argv):
    parser = argparse.ArgumentParser(description="Call hwopt.v1.OpsService through gRPC server reflection.")
    parser.add_argument("--address", default="127.0.0.1:50551", help="coordinator HOST:PORT (default 127.0.0.1:50551)")
    parser.add_argument("--token", help="ops token, sent as a bearer token")
    parser.add_argument("--tls-ca", help="PEM CA of the coordinator certificate; enables TLS")
    parser.add_argument("--timeout", type=float, default=10.0, help="deadline of each call in seconds (default 10)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("services", help="list the services the server reflects")
    commands.add_parser("methods", help="list the ops service's methods, learnt by reflection")
    health = commands.add_parser("health", help="query the standard health service")
    health.add_argument("service", nargs="?", default="", help="service name (default: the whole server)")
    call = commands.add_parser("call", help="call a unary ops method with a JSON request")
    call.add_argument("method", help="for example ListFleet, ListConfigs, GetHistory, ExportProfile")
    call.add_argument("request", nargs="?", default="{}", help="request as JSON (protobuf JSON names), default {}")
    args = parser.parse_args(argv)

    client = OpsClient(args.address, token=args.token, timeout=args.timeout, root_ca=args.tls_ca)
    try:
        if args.command == "services":
            result = client.services()
        elif args.command == "methods":
            result = client.methods()
        elif args.command == "health":
            result = {"service": args.service, "status": client.health(args.service)}
        else:
            result = client.call(args.method, args.request)
    except grpc.RpcError as error:
        sys.stderr.write("%s: %s\n" % (error.code().name, error.details()))
        return 1
    except (RuntimeError, KeyError, TypeError, ValueError, json_format.ParseError) as error:
        # TypeError: the reflected files do not build (a server serving broken descriptors).
        sys.stderr.write("%s\n" % error)
        return 1
    finally:
        client.close()
    sys.stdout.write(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
