// The VPC and the rule that keeps user-supplied URLs away from internal addresses at the network level.
//
// Subnet groups:
//   public   NAT gateway only.
//   egress   the gateway Lambda (fetches image URLs) and the webhook sender (POSTs to user URLs): outbound via
//            NAT. A network ACL denies every private, shared, link-local and loopback range except Redis (6379)
//            in the data subnets, so a URL that resolves to an internal address cannot be reached even if the
//            application's SSRF guard (lib/net/ssrf.ts, pinned DNS) were bypassed. NACLs do not filter the
//            Amazon-provided DNS resolver or the metadata services (AWS documents this); the app refuses
//            link-local targets and Fargate/Lambda expose no EC2 instance metadata.
//   workers  GPU instances: outbound 443 (S3 via its gateway endpoint, ECR, CloudWatch) and Redis only, by
//            security group. Workers never contact user URLs.
//   data     MemoryDB, isolated (no route out).
import { Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Construct } from 'constructs';

/** Ranges no outbound user-URL traffic may reach (RFC 1918, CGNAT, link-local, loopback, "this network"). */
export const INTERNAL_RANGES = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '169.254.0.0/16', '127.0.0.0/8', '0.0.0.0/8'];

export const REDIS_PORT = 6379;

export class Network extends Construct {
  readonly vpc: ec2.Vpc;
  readonly egressSubnets: ec2.SubnetSelection = { subnetGroupName: 'egress' };
  readonly workerSubnets: ec2.SubnetSelection = { subnetGroupName: 'workers' };
  readonly dataSubnets: ec2.SubnetSelection = { subnetGroupName: 'data' };

  constructor(scope: Construct, id: string, props: { cidr: string; maxAzs: number; natGateways: number }) {
    super(scope, id);
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      ipAddresses: ec2.IpAddresses.cidr(props.cidr),
      maxAzs: props.maxAzs,
      natGateways: props.natGateways,
      subnetConfiguration: [
        { name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
        { name: 'egress', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 22 },
        { name: 'workers', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 22 },
        { name: 'data', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 },
      ],
      gatewayEndpoints: { S3: { service: ec2.GatewayVpcEndpointAwsService.S3 } },
    });

    const acl = new ec2.NetworkAcl(this, 'EgressAcl', { vpc: this.vpc, subnetSelection: this.egressSubnets });
    let rule = 100;
    for (const subnet of this.vpc.selectSubnets(this.dataSubnets).subnets) {
      acl.addEntry(`RedisOut${rule}`, {
        ruleNumber: rule++, cidr: ec2.AclCidr.ipv4(subnet.ipv4CidrBlock), traffic: ec2.AclTraffic.tcpPort(REDIS_PORT),
        direction: ec2.TrafficDirection.EGRESS, ruleAction: ec2.Action.ALLOW,
      });
    }
    rule = 200;
    for (const cidr of INTERNAL_RANGES) {
      acl.addEntry(`DenyInternal${rule}`, {
        ruleNumber: rule++, cidr: ec2.AclCidr.ipv4(cidr), traffic: ec2.AclTraffic.allTraffic(),
        direction: ec2.TrafficDirection.EGRESS, ruleAction: ec2.Action.DENY,
      });
    }
    acl.addEntry('PublicTcpOut', {
      ruleNumber: 300, cidr: ec2.AclCidr.anyIpv4(), traffic: ec2.AclTraffic.tcpPortRange(1, 65535),
      direction: ec2.TrafficDirection.EGRESS, ruleAction: ec2.Action.ALLOW,
    });
    // NACLs are stateless: replies come back to ephemeral ports (from the internet and from Redis).
    acl.addEntry('RepliesIn', {
      ruleNumber: 100, cidr: ec2.AclCidr.anyIpv4(), traffic: ec2.AclTraffic.tcpPortRange(1024, 65535),
      direction: ec2.TrafficDirection.INGRESS, ruleAction: ec2.Action.ALLOW,
    });
  }

  securityGroup(id: string, description: string, allowAllOutbound: boolean): ec2.SecurityGroup {
    return new ec2.SecurityGroup(Stack.of(this), id, { vpc: this.vpc, description, allowAllOutbound });
  }
}
