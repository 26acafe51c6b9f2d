"""tlsca.py -- test certificates made with the openssl command: a CA, and
leaf certificates (server or client) signed by it. Raises harness.Skip
without the openssl command.
"""

import os
import subprocess

import harness as H

EXT_CNF = """\
[req]
distinguished_name = dn
[dn]
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[v3_server]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,DNS:backend.test,IP:127.0.0.1
[v3_client]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
"""
EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1']


class CertDir:
    """Certificates in DIRECTORY: path(name) -> (NAME.pem, NAME.key)."""

    def __init__(self, directory):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, 'ext.cnf'), 'w') as f:
            f.write(EXT_CNF)
        self.serial = 1

    def openssl(self, *args):
        try:
            r = subprocess.run(['openssl'] + list(args), cwd=self.dir,
                               stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=30)
        except FileNotFoundError:
            raise H.Skip('no openssl command to make test certificates')
        H.check(r.returncode == 0, 'openssl %s: exit %d: %s'
                % (' '.join(args), r.returncode, r.stderr.decode()[-400:]))

    def path(self, name):
        return (os.path.join(self.dir, name + '.pem'),
                os.path.join(self.dir, name + '.key'))

    def ca(self, name, cn):
        """A self-signed CA NAME with common name CN."""
        self.openssl('req', '-x509', *EC, '-nodes', '-keyout', name + '.key',
                     '-out', name + '.pem', '-days', '2', '-subj', '/CN=' + cn,
                     '-config', 'ext.cnf', '-extensions', 'v3_ca')
        return self.path(name)

    def leaf(self, name, ca, cn, kind='server'):
        """A leaf NAME (KIND server: names localhost, backend.test and
        127.0.0.1; client: clientAuth) with common name CN, signed by CA."""
        self.openssl('req', '-new', *EC, '-nodes', '-keyout', name + '.key',
                     '-out', name + '.csr', '-subj', '/CN=' + cn,
                     '-config', 'ext.cnf')
        self.serial += 1
        self.openssl('x509', '-req', '-in', name + '.csr', '-CA', ca + '.pem',
                     '-CAkey', ca + '.key', '-set_serial', str(self.serial),
                     '-days', '2', '-out', name + '.pem', '-extfile',
                     'ext.cnf', '-extensions', 'v3_' + kind)
        return self.path(name)
