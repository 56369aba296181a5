"""What the vendor documents require: profiles, the machine-protocol table, the documents' titles
and the firewall request built from them."""
