"""network domain.

The ledger types of what it makes are here, apart from the code that makes and undoes them: ValidateAccount asks
whether the ledger still lists network resources (`blueprint.has_network`) and imports no more of the domain.
"""

VPC = "ec2:vpc"
VPC_CIDR = "ec2:vpc-cidr"
SUBNET = "ec2:subnet"
ROUTE_TABLE = "ec2:route-table"
ROUTE = "ec2:route"
ASSOCIATION = "ec2:rtb-association"
IGW = "ec2:igw"
NAT = "ec2:nat"
EIP = "ec2:eip"
VPCE = "ec2:vpce"
TGW_ATTACHMENT = "ec2:tgw-attachment"
CIDR_ALLOCATION = "network:cidr-allocation"

NETWORK_TYPES = frozenset(
    {VPC, VPC_CIDR, SUBNET, ROUTE_TABLE, ROUTE, ASSOCIATION, IGW, NAT, EIP, VPCE, TGW_ATTACHMENT, CIDR_ALLOCATION}
)
"""Every ledger type the network domain writes (what RemoveNetwork undoes)."""
